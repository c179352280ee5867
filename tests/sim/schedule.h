// A failure schedule: everything one seed decides before the run starts.
// The cluster (3 nodes, some seeds 5), what protects it, how its network
// behaves, and the faults. A run goes through five phases; the boundaries
// between them move with the cluster (a phase ends as soon as its goal is
// met), the bounds do not:
//
//   boot       until converged (invariant 4), at most kBootBoundMs
//   quiet      kQuietMs: nothing may start or stop
//   faults     fault_window_ms; fault times count from its start, and every
//              fault ends when it does (the "heal")
//   recover    until converged (invariant 4), at most kRecoverBoundMs
//   quiet      kQuietMs again
//
// Daemon-only crashes and long pauses need fencing or a watchdog (nothing
// else stops the processes of a daemon that does not run), so seeds with
// neither inject only power losses and pauses shorter than the lease margin.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/sim_network.h"

namespace bulwark::sim {

enum class FaultKind {
  kPowerLoss,      // the node and its processes are gone until it boots again
  kDaemonCrash,    // bulwarkd dies, its processes run on; restarted later
  kPause,          // bulwarkd does not run for a while; its processes run on
  kPartition,      // `side` cannot talk to the rest, both ways
  kOneWay,         // node -> other datagrams are lost
  kLossyLink,      // node -> other loses per_mille of its datagrams
  kResourceCrash,  // the process of `resource` on node dies
  kStartFails,     // the next start of `resource` on node fails
  kStopHangs,      // the next stop of `resource` on node hangs until SIGKILL (exec)
  kPromoteFails,   // the next promotion of `resource` on node fails
  // What an operator does meanwhile (through the API on the majority side):
  kRedefine,     // apply a file that changes what `resource` runs (for good)
  kRestart,      // `resource restart` of `resource`
  kMaintenance,  // node maintenance of `node` for a while
  kUnmanage,     // `resource unmanage` of `resource` for a while
};

struct Fault {
  int64_t at_ms = 0;
  FaultKind kind = FaultKind::kPause;
  int node = 0;
  int other = 0;
  std::vector<int> side;
  int64_t duration_ms = 0;
  std::string resource;
  int per_mille = 0;
};

// What covers a node whose daemon cannot stop its exclusive resources (it
// hangs, is paused, crashed, or its stop hangs).
enum class Protection {
  kLeaseOnly,  // nothing: only power losses and short pauses are injected
  kFencing,    // a fence agent powers lost nodes off
  kWatchdog,   // every node's watchdog resets it when bulwarkd stops feeding it
};
const char* protection_name(Protection p);

constexpr int64_t kBootBoundMs = 3000;
constexpr int64_t kQuietMs = 1000;
// Long enough for fenced or reset nodes to boot and settle, for injected
// failures to age out (failure_timeout_ms) and for everything to start
// again.
constexpr int64_t kRecoverBoundMs = 7000;
// Operator actions per seed, besides the faults (0 to this many).
constexpr int kOperatorActionsMax = 3;

struct Schedule {
  uint64_t seed = 0;
  int nodes = 3;
  Protection protection = Protection::kLeaseOnly;
  NetworkProfile network;
  std::vector<int64_t> boot_ms;          // when each node first boots
  std::vector<int64_t> clock_offset_ms;  // each node's monotonic clock minus global time
  int64_t fault_window_ms = 0;
  // While faults are injected: how often any start fails.
  int start_fail_per_mille = 0;
  std::vector<Fault> faults;  // sorted by at_ms, which counts from the fault window's start
};

Schedule make_schedule(uint64_t seed);
std::string describe(const Fault& f, const std::vector<std::string>& names);
std::string describe(const Schedule& s);

}  // namespace bulwark::sim
