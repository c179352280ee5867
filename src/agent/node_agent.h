// The node agent's logic (DESIGN.md layer 4) as a state machine: it takes
// the committed placement, the node's lease and the answers of operations,
// and decides which operation to run next on each local resource instance.
// It never blocks and reads time only from the injected Clock; operations go
// to the injected OperationRunner. AgentService runs it in bulwarkd; the
// deterministic simulation runs it against simulated resources.
//
// Safety (invariant 1): an exclusive instance (a singleton, or a promoted
// instance) is started or promoted only
//   - while the node holds its quorum lease with more than `lease_guard_ms`
//     left, and
//   - after this node's claim on the current placement revision committed
//     (wants_claim / on_claimed): a claim is a status write conditioned on
//     the placement revision, so the coordinator can never have replaced
//     that placement in between;
// and it is stopped (demoted) as soon as the lease has less than
// `lease_guard_ms` left, with the stop cut short at the lease's end, so that
// it is gone before the majority can consider this node's lease expired.
//
// Thread-safety: none; one thread owns it.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "agent/operation.h"
#include "core/env.h"
#include "store/schema.h"

namespace bulwark {

struct AgentOptions {
  std::string node;
  std::string node_address;
  int lease_guard_ms = 100;
};

// Everything one step looks at.
struct AgentView {
  bool store_loaded = false;
  std::shared_ptr<const ResourceConfig> config;  // null: no resources applied
  // The applied resources exist but do not parse (a newer format during a
  // rolling upgrade, a hand edit): hold everything as it is.
  bool config_unreadable = false;
  std::optional<PlacementRecord> placement;
  DirectivesRecord directives;
  NodeMode node_mode = NodeMode::kOnline;
  const std::map<std::string, NodeStatusRecord>* statuses = nullptr;  // all nodes'
  bool holds_lease = false;
  int64_t lease_remaining_ms = 0;
};

class NodeAgent {
 public:
  NodeAgent(const Clock& clock, OperationRunner& runner, AgentOptions options);

  // Decides and begins operations. Cheap when nothing changed.
  void step(const AgentView& view);
  void on_completion(const OpCompletion& completion);

  // The placement revision an exclusive start or promotion waits to claim.
  std::optional<int64_t> wants_claim() const { return wants_claim_; }
  // The status record to write as the claim on wants_claim(); the starts
  // and promotions it announces are what the claim will cover.
  NodeStatusRecord begin_claim();
  // The claim on `placement_revision` committed: it covers what the record
  // of begin_claim() announced (without begin_claim, what status() shows
  // now).
  void on_claimed(int64_t placement_revision);
  // The claim was refused or failed: it covers nothing.
  void on_claim_failed() { claim_snapshot_.reset(); }

  // What to publish as this node's status record.
  NodeStatusRecord status() const;
  // Every instance known at start was probed.
  bool probed() const { return probed_; }

  // Stop every local instance (daemon shutdown); step() then only stops.
  void begin_shutdown() { shutting_down_ = true; }
  // True once nothing runs and no operation is in flight.
  bool idle() const;
  // Some exclusive instance (a singleton, a promoted instance) may run here:
  // while the lease is lost, the watchdog is fed only when none does.
  bool exclusive_active() const;
  // The soonest time a step has something to do (a monitor, a retry).
  int64_t next_due_ms() const { return next_due_ms_; }

 private:
  enum class Phase {
    kUnprobed,
    kStopped,
    kStarting,
    kRunning,
    kPromoting,
    kPromoted,
    kDemoting,
    kStopping,
    kFailed,   // a failure was seen: stop before anything else
    kBlocked,  // stop failed: the instance may still run; needs cleanup or fencing
  };
  struct Instance {
    ResourceSpec spec;  // as last configured
    Phase phase = Phase::kUnprobed;
    uint64_t op_id = 0;  // in flight; 0: none
    OpKind op = OpKind::kProbe;
    int64_t next_monitor_ms = 0;
    bool exited = false;  // the runner reported its process gone
    // It may be promoted: from the moment a promotion begins until a demote
    // or stop succeeds (a failed promoted instance may still act as one).
    bool maybe_promoted = false;
    bool stop_cut = false;  // the stop in flight got less than its full timeout
    int fail_count = 0;
    int64_t last_failure_mono_ms = 0;
    int64_t last_failure_wall_ms = 0;
    std::string last_failure;
    int64_t cleanup_generation = 0;
  };
  enum class Role { kNone, kRun, kPromote };

  Role desired_role(const std::string& name, const Instance& inst, const AgentView& view) const;
  bool exclusive_allowed(const AgentView& view) const;
  bool predecessors_started(const std::string& name, const AgentView& view) const;
  // The resources a name in an order constraint stands for: a group's
  // members, or the resource itself.
  std::vector<std::string> members_of(const std::string& name, const AgentView& view) const;
  // Ends a start or promotion of an exclusive instance that is under way
  // while the lease no longer allows it.
  void cut_short(const std::string& name, Instance& inst, const AgentView& view);
  int exclusive_stop_ms(const Instance& inst, const AgentView& view) const;
  bool successors_stopped(const std::string& name, const AgentView& view) const;
  void step_instance(const std::string& name, Instance& inst, const AgentView& view);
  void begin(const std::string& name, Instance& inst, OpKind kind, int timeout_ms);
  void fail(Instance& inst, const std::string& what);
  void refresh_config(const AgentView& view);
  static bool runs(Phase phase);

  const Clock& clock_;
  OperationRunner& runner_;
  AgentOptions options_;
  std::map<std::string, Instance> instances_;
  uint64_t next_op_id_ = 1;
  std::optional<int64_t> wants_claim_;
  // Exclusive starts and promotions that wait for the claim. The status
  // record (which the claim writes) reports them as already starting or
  // promoted: what a node publishes must never understate what it may run.
  std::map<std::string, Role> claim_waiting_;
  // The placement revision of the last claim that committed, and what the
  // claims under it announced: a claim covers only the starts and
  // promotions its status record showed, never a later one under the same
  // revision (the coordinator may have acted on the record in between).
  int64_t claimed_revision_ = 0;
  std::map<std::string, Role> claimed_;
  std::optional<std::map<std::string, Role>> claim_snapshot_;  // of the claim in flight
  int64_t lease_expires_mono_ms_ = 0;
  bool probed_ = false;
  bool shutting_down_ = false;
  int64_t next_due_ms_ = 0;
  // The config last seen, kept alive so that a new one is never mistaken
  // for it (a freed object's address can be reused).
  std::shared_ptr<const ResourceConfig> seen_config_;
};

}  // namespace bulwark
