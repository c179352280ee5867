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
// Notifications (clones with `notify`, as Pacemaker's notify=true): every
// active instance's agent is told before ("pre") and after ("post") each
// start, stop, promotion and demotion of any instance of its clone. There
// is no central transition here, so the handshake runs through the status
// records:
//   - a node about to run such an operation announces it (notify.pending,
//     with a sequence number) and waits until every reachable node whose
//     instance is active has run its pre notification and says so
//     (notify.told), or until notify_timeout_ms plus a margin passed: a
//     peer that never answers delays the operation, never blocks it;
//   - when it has run, the node records it (notify.done), and every node
//     whose instance is active then (the new one included) runs the post
//     notification;
//   - posts go before pres, and within each, demotions, stops, starts,
//     promotions, so that each agent sees events in Pacemaker's order.
// A stop or demotion forced by a lost lease is never held up: it runs at
// once, and is only notified after.
//
// The same handshake drains a `proxy` resource's servers before they stop:
// a resource that a proxy's servers_from names announces its stops, and
// every node running such a proxy says it was told (acknowledge()) once its
// proxy no longer sends that instance anything. A failed instance is not
// drained: it serves nothing, and its restart must not wait.
//
// Definition changes (core/resource_change.h): an instance remembers the
// definition it was started with (`running`; after a daemon restart, what
// the runner recorded). When the applied one differs in what runs, it is
// restarted: stopped with the old definition, started with the new one, in
// the same ways as any stop and start (order, drains, notifications, the
// singleton's claim). A clone restarts one instance at a time: an instance
// goes when every other instance of the clone is up to date and serving,
// or outdated and later in turn (promoted instances last, then by node
// name) -- a rule each node applies to the status records, so no two nodes
// take their turn together. Group members after a restarting member stop
// before it and start after it. Reloadable parameters (ReloadTraits) are
// reloaded instead, everywhere at once; settings only Bulwark uses apply
// at once. `resource restart` (DirectivesRecord::restarts) makes instances
// started before it outdated the same way.
//
// Maintenance (cluster or node) and `resource unmanage` leave an instance
// alone: no operation at all, not even at daemon shutdown or when the lease
// is lost; its status says so (unmanaged), so that only a fence lets the
// coordinator count it stopped.
//
// Thread-safety: none; one thread owns it.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/operation.h"
#include "core/env.h"
#include "core/resource_change.h"
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
  std::vector<std::string> nodes;           // the cluster's members, this node included
  std::set<std::string> unreachable;        // peers the membership does not reach now
  std::set<std::string> maintenance_nodes;  // nodes in node maintenance (they restart nothing)
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

  // A proxy on this node has drained `node`'s instance of `resource` (its
  // stop announced as `seq`): published as told, which lets that stop go on.
  void acknowledge(const std::string& resource, const std::string& node, int64_t seq);

  // What to publish as this node's status record.
  NodeStatusRecord status() const;
  // Every instance known at start was probed.
  bool probed() const { return probed_; }

  // Stop every managed local instance (daemon shutdown); step() then only
  // stops. Instances left alone (maintenance, unmanaged) keep running.
  void begin_shutdown() { shutting_down_ = true; }
  // True once nothing managed runs and no operation is in flight.
  bool idle() const;
  // Some managed exclusive instance (a singleton, a promoted instance) may
  // run here: while the lease is lost, the watchdog is fed only when none
  // does. Instances left alone are the operator's (maintenance).
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
  // An operation of a clone with notify, as announced or done.
  struct Announced {
    OpKind op = OpKind::kStart;
    int64_t seq = 0;
  };
  struct NotifyState {
    std::optional<Announced> pending;  // announced, not run yet (or running)
    int64_t pending_since_ms = 0;
    bool pending_wanted = false;  // the last step still wanted it
    std::optional<Announced> done;
    std::map<std::string, int64_t> told;        // node -> its announcement notified (pre) here
    std::map<std::string, int64_t> done_seen;   // node -> its newest done this agent has seen
    std::map<std::string, Announced> post_due;  // node -> its done still to notify (post)
    // The notify operation in flight: its event, and the announcements
    // (pre) or dones (post) it covers.
    NotifyEvent in_flight;
    std::map<std::string, int64_t> in_flight_seqs;
  };
  struct Instance {
    ResourceSpec spec;  // as last configured
    // The definition it was started with, while it may run (set when a
    // start begins or a probe finds it; cleared once stopped). Stops,
    // monitors, demotions and notifications use it.
    std::optional<ResourceSpec> running;
    int64_t running_generation = 0;   // the `resource restart` it was started under
    std::string running_fingerprint;  // run_fingerprint(*running); empty without
    std::string spec_fingerprint;     // run_fingerprint(spec)
    int64_t desired_generation = 0;   // the newest `resource restart`, as last seen
    SpecChange change;                // running -> spec, as of the last step
    bool change_stale = true;         // spec changed since `change` was compared
    bool left_alone = false;          // maintenance or unmanaged, as of the last step
    bool restart_logged = false;      // the restart it waits for was logged
    int64_t forced_generation = 0;    // the newest `cleanup --force` honoured
    Phase phase = Phase::kUnprobed;
    uint64_t op_id = 0;  // in flight; 0: none
    OpKind op = OpKind::kProbe;
    int64_t next_monitor_ms = 0;
    bool exited = false;  // the runner reported its process gone
    // It may be promoted: from the moment a promotion begins until a demote
    // or stop succeeds (a failed promoted instance may still act as one).
    bool maybe_promoted = false;
    bool stop_cut = false;  // the stop in flight got less than its full timeout
    // Failed while it may be promoted, it was demoted (or a demotion was
    // tried) on the way to its stop, as Pacemaker recovers it.
    bool recovery_demoted = false;
    int fail_count = 0;
    int64_t last_failure_mono_ms = 0;
    int64_t last_failure_wall_ms = 0;
    std::string last_failure;
    int64_t cleanup_generation = 0;
    NotifyState notify;
    // The proxy resources whose servers_from name this resource.
    std::vector<std::string> proxy_sources_of;
    // Its operations are announced: all with notify, stops for a proxy's
    // source (each proxy drains it before it stops).
    bool announces() const { return spec.notify || !proxy_sources_of.empty(); }
  };
  enum class Role { kNone, kRun, kPromote };

  Role desired_role(const std::string& name, const Instance& inst, const AgentView& view) const;
  // desired_role, or none while it (or a group member before it) takes its
  // turn to restart.
  Role effective_role(const std::string& name, const Instance& inst, const AgentView& view) const;
  bool managed(const std::string& name, const AgentView& view) const;
  // It runs outdated (see the top of this file): restart or reload due.
  bool needs_restart(const Instance& inst) const;
  bool outdated(const Instance& inst) const;
  // The rolling rule: every other instance of the clone is up to date and
  // serving, or outdated and later in turn.
  bool restart_turn(const std::string& name, const Instance& inst, const AgentView& view) const;
  // Brings `change` up to date, and `running` where only settings Bulwark
  // uses changed.
  void refresh_running(Instance& inst);
  // Every change of `running` goes through here.
  static void set_running(Instance& inst, std::optional<ResourceSpec> spec, int64_t generation);
  bool exclusive_allowed(const AgentView& view) const;
  // It may be promoted, and the lease no longer allows that: it is demoted
  // before anything else, notifications included.
  bool must_demote(const Instance& inst, const AgentView& view) const;
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
  // Notifications (see the top of this file; in node_agent_notify.cc).
  // Begins `kind` once `claimed` (the claim an exclusive start or
  // promotion needs); for a clone with notify, only after announcing it
  // and waiting for the pre notifications of the other active instances
  // (the claim is made meanwhile).
  void begin_announced(const std::string& name, Instance& inst, OpKind kind, int timeout_ms,
                       const AgentView& view, bool claimed = true);
  bool peers_told(const std::string& name, const Instance& inst, const AgentView& view) const;
  // Begins a due notification of this node's instance; false if none is due.
  bool step_notify(const std::string& name, Instance& inst, const AgentView& view);
  NotifyEvent notify_event(const std::string& name, const Instance& inst, bool post, OpKind op,
                           const std::vector<std::string>& batch, const AgentView& view) const;
  void on_notify_done(Instance& inst);
  void record_done(Instance& inst, OpKind kind);
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
  int cluster_size_ = 0;
  int64_t last_announced_seq_ = 0;
  // Instances that take their turn to restart in this step.
  std::set<std::string> restarting_;
  // The config last seen, kept alive so that a new one is never mistaken
  // for it (a freed object's address can be reused).
  std::shared_ptr<const ResourceConfig> seen_config_;
};

}  // namespace bulwark
