// Adding and removing nodes (docs/operations.md "Add a node", "Remove a
// node", "Replace a failed node"): the rules
// that decide whether a change is safe, as pure functions, and the etcd
// member changes that go with it. Daemon::add_node and remove_node carry
// them out in order (the store record, the etcd member, the undo of a half
// done add); the rules are unit-tested on their own.
#pragma once

#include <functional>
#include <string>

#include "core/env.h"
#include "core/error.h"
#include "core/resource_config.h"
#include "store/etcd_client.h"
#include "store/schema.h"

namespace bulwark {

// A node joins every majority at once and is offline until it starts: an
// add must leave a majority of the members reachable, or the cluster loses
// its lease (as adding while another node is down would). `members` are the
// members now (this node included), `reachable` those this node reaches
// (itself included); `new_member`: the node is not a member yet.
Status add_keeps_majority(const std::string& name, int members, int reachable, bool new_member);

// What the node with `status` may still run exclusively (a singleton, a
// promoted instance, anything the applied config no longer names), comma-
// separated; empty when nothing. A removed node can be neither fenced nor
// proven gone, so a removal waits until this is empty.
std::string exclusive_still_running(const NodeStatusRecord& status, const ResourceConfig* config);

// Runs `change` until it succeeds, fails for good, or `retry_ms` passed:
// etcd refuses membership changes for a while after members (re)connected
// and during elections (kUnavailable), and a change sent during an
// election has an unknown outcome (kTimeout). Each `change` must check the
// member list first, so that a retry never applies it twice.
Status retry_member_change(const Clock& clock, int64_t retry_ms,
                           const std::function<Status()>& change);

// The embedded etcd member at `peer_url` exists (added if it did not).
Status ensure_etcd_member(EtcdClient& etcd, const std::string& name, const std::string& peer_url);
// No embedded etcd member is named `name` or listens at `peer_url`.
Status remove_etcd_member(EtcdClient& etcd, const std::string& name, const std::string& peer_url);

}  // namespace bulwark
