// The invariants a run must keep, checked against the ground truth (which
// processes really run) rather than against what any node believes.
//
//   exclusive_at_most_once   DESIGN.md invariant 1: a singleton (a group
//       member is one) never runs on two nodes at the same instant, and a
//       promotable never has more than promoted_max promoted instances.
//   stopped_by_lease_end     DESIGN.md layer 2: a node that loses its
//       quorum lease has stopped (demoted) its exclusive instances when the
//       lease ends. Checked where neither fencing nor a watchdog covers a
//       lost node (the coordinator then relies on exactly this), for
//       instances the current daemon life started, on a daemon that has run
//       unpaused for a while.
//   acknowledged_writes_kept DESIGN.md invariant 2: every write the
//       operator was told committed (the init, `apply`, a node's mode, a
//       restart) is still in the store, unless the operator replaced it;
//       daemons write only their own keys and never clobber one.
//   coordinator_write_under_lease  DESIGN.md invariant 3: a coordinator
//       write (a claim, the initialisation, liveness, placement) commits
//       only if the node that sent it held its quorum lease when it sent
//       it. (A minority reaching no etcd quorum commits nothing at all:
//       SimCluster's store access, as etcd.)
//   converged                DESIGN.md invariant 4: every enabled resource is
//       placed (singletons on one node, clones and promotables on every
//       node, promoted_max promoted), runs exactly where the committed
//       placement says, and every instance runs the applied definition,
//       started after the newest `resource restart`.
// Each returns an empty string when the invariant holds, else what is wrong.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/resource_config.h"
#include "sim/sim_node.h"
#include "sim/sim_processes.h"
#include "sim/sim_store.h"
#include "store/schema.h"

namespace bulwark::sim {

std::string exclusive_at_most_once(const ResourceConfig& config, const Processes& procs,
                                   const std::vector<std::string>& nodes);

// Slack for the millisecond steps of the simulation.
constexpr int64_t kLeaseSlackMs = 2;

std::string stopped_by_lease_end(const ResourceConfig& config, const Processes& procs,
                                 const std::vector<const SimNode*>& nodes, int64_t now_ms,
                                 int lease_ms);

// `acked`: key -> the store revision of the operator's latest write of it
// (0: the operator deleted it).
std::string acknowledged_writes_kept(const SimStore& store,
                                     const std::map<std::string, int64_t>& acked);

// True for a transaction of the coordinator role: it compares or writes
// the coordinator record (StoreWrites' coordinator writes all do).
bool is_coordinator_write(const Schema& schema, const std::vector<Compare>& compares,
                          const std::vector<TxnOp>& ops);
std::string coordinator_write_under_lease(const std::string& node, const std::string& what,
                                          bool held_lease_when_sent);

std::string converged(const ClusterState& committed, const Processes& procs,
                      const std::vector<const SimNode*>& nodes);

}  // namespace bulwark::sim
