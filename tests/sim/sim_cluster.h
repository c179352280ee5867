// The simulated world of one seed: the nodes, the heartbeat network, the
// store, the ground-truth processes, the fence agents and watchdogs,
// stepped one millisecond at a time through the schedule's phases, with the
// checkers run after every step:
//
//   boot -> converged -> quiet -> faults -> heal -> converged -> quiet
//
// Everything random comes from one seeded Rng, and every container is
// ordered, so a seed replays exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sim/schedule.h"
#include "sim/sim_network.h"
#include "sim/sim_node.h"
#include "sim/sim_processes.h"
#include "sim/sim_store.h"
#include "sim/sim_world.h"
#include "sim/trace.h"

namespace bulwark::sim {

struct SimResult {
  uint64_t seed = 0;
  bool ok = true;
  int64_t failed_at_ms = 0;
  std::string failure;
  uint64_t starts = 0;         // ground-truth process starts over the run
  int64_t store_revision = 0;  // store writes over the run, roughly
};

struct SimOptions {
  bool verbose = false;  // print every event as it happens
  // Check DESIGN.md's lease promise (checkers.h) in lease-only seeds; off,
  // a late stop fails the run only if it makes something run twice.
  bool lease_check = true;
};

class SimCluster final : public SimWorld {
 public:
  SimCluster(const Schedule& schedule, SimOptions options);
  ~SimCluster() override;

  SimResult run();
  const Trace& trace() const { return trace_; }

  // SimWorld
  int64_t now_ms() const override { return now_; }
  Rng& rng() override { return rng_; }
  Trace& trace() override { return trace_; }
  Processes& processes() override { return procs_; }
  const SimConfig& config() const override { return config_; }
  void send(int from, const Datagram& d) override;
  void store_call(int node, uint64_t incarnation, StoreRequest request, StoreDone done) override;
  uint64_t begin_fence(int caller, uint64_t incarnation, const std::string& target) override;
  FenceState fence_state(uint64_t call) override;
  bool inject(int node, const std::string& resource, OpFault fault) override;
  void feed_watchdog(int node) override { watchdog_fed_ms_[node] = now_; }

 private:
  struct Call {
    int node = 0;
    uint64_t incarnation = 0;
    StoreRequest request;
    StoreDone done;
    int64_t commit_ms = -1;  // -1: never reaches the store
    int64_t reply_ms = 0;
    int64_t deadline_ms = 0;  // the client gives up: kTimeout
    int64_t issued_ms = 0;
    bool reply_lost = false;
    bool coordinator_write = false;  // is_coordinator_write (checkers.h)
    bool lease_when_sent = false;    // the sender held its quorum lease
    std::optional<StoreReply> reply;
  };
  struct FenceCall {
    int caller = 0;
    uint64_t incarnation = 0;
    int target = 0;
    int64_t done_ms = 0;
    bool succeeds = true;
    FenceState state = FenceState::kPending;
  };
  struct FaultEnd {
    int64_t at_ms = 0;
    Fault fault;
  };

  void step();
  void start_fault(const Fault& f);
  void end_fault(const Fault& f);
  void heal();
  // Operator writes (through a majority node's API, as far as the store
  // can tell), each remembered for invariant 2.
  void operator_write(const std::vector<TxnOp>& ops);
  void update_directives(const std::function<void(DirectivesRecord&)>& change);
  void set_node_mode(int node, NodeMode mode);
  void power_off(int node, const std::string& why);
  void power_on(int node, int64_t boot_delay_ms);
  void update_store_access();
  void run_store_calls();
  void run_fences();
  void run_watchdogs();
  void deliver_packets();
  void deliver_watches();
  enum class Phase { kBoot, kQuietAfterBoot, kFaults, kRecover, kQuietAfterRecovery, kDone };
  void enter(Phase phase, const char* what);
  void check();
  // Invariant 4, and nothing left that could still change the cluster: "" if settled.
  std::string settled();
  void check_quiet(const char* phase);
  void fail(const std::string& what);
  int node_index(const std::string& name) const;

  Schedule schedule_;
  SimOptions options_;
  SimConfig config_;
  Rng rng_;
  Trace trace_;
  int64_t now_ = 0;
  SimStore store_;
  SimNetwork net_;
  Processes procs_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<const SimNode*> node_list_;  // the same, for the checkers
  std::vector<bool> store_access_;
  std::vector<int64_t> watch_due_ms_;     // -1: no delivery pending
  std::vector<int64_t> off_since_ms_;     // -1: powered
  std::vector<int64_t> watchdog_fed_ms_;  // -1: not armed
  std::map<uint64_t, Call> calls_;
  // Key -> the revision of the operator's latest write of it (0: deleted).
  std::map<std::string, int64_t> acked_;
  int64_t acked_checked_revision_ = 0;
  uint64_t next_call_ = 1;
  std::map<uint64_t, FenceCall> fences_;
  uint64_t next_fence_ = 1;
  std::size_t next_fault_ = 0;
  std::vector<FaultEnd> fault_ends_;
  std::set<std::tuple<int, std::string, OpFault>> armed_faults_;
  std::shared_ptr<const ResourceConfig> resources_;
  std::map<std::string, int> versions_;  // of each resource's definition (kRedefine)
  uint64_t checked_changes_ = UINT64_MAX;
  Phase phase_ = Phase::kBoot;
  int64_t phase_since_ms_ = 0;
  int64_t faults_from_ms_ = -1;  // when the fault window began; fault times count from it
  int64_t settled_since_ms_ = -1;
  // Marks for the quiet periods: ground-truth changes and placement.
  uint64_t quiet_changes_ = 0;
  int64_t quiet_placement_revision_ = 0;
  std::optional<SimResult> failure_;
};

}  // namespace bulwark::sim
