// bulwarkd: assembles one node from the layers (store, membership,
// coordinator, node agent, API) and runs its control loop on the main
// thread.
//
// Threads: main (control loop: signals, etcd supervision, membership's
// member list, the coordinator's tick), membership (heartbeats), store
// (watch), agent (the node agent's loop) and its status writer, health
// (etcd status, cache freshness), API (httplib's pool).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "api/api_backend.h"
#include "core/config.h"

namespace bulwark {

// Exit codes of bulwarkd.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitBadInput = 2;

struct DaemonOptions {
  // On SIGTERM/SIGINT, leave the node's resources running for the next
  // bulwarkd to adopt: the node is put in maintenance first (unless it or
  // the cluster is already), so that nobody acts on them meanwhile.
  bool detach_resources = false;
};

// Validates everything it can before starting anything, then runs until
// SIGTERM/SIGINT (or until this node is removed from the cluster). A node
// the cluster no longer has, or whose data belongs to an earlier node of
// its name, is refused (kExitBadInput) before its etcd member or any
// resource starts.
int run_daemon(const std::string& config_path, const std::string& node_name,
               const DaemonOptions& options = {});

}  // namespace bulwark
