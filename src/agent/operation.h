// Resource operations: what the node agent asks a resource agent to do, and
// the answers it gets. The node agent's logic (node_agent.h) sees only these
// types and the OperationRunner interface, so the deterministic simulation
// can answer operations itself while bulwarkd runs real processes
// (class_dispatcher.h, and the classes in src/classes).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/resource_config.h"

namespace bulwark {

// kReload applies reloadable parameters to a running OCF instance (its
// agent's ReloadTraits::action) without a restart.
enum class OpKind { kProbe, kStart, kStop, kMonitor, kPromote, kDemote, kNotify, kReload };
const char* op_kind_name(OpKind kind);
std::optional<OpKind> parse_op_kind(const std::string& name);

// The answer of an operation, in OCF terms (the other agent classes map
// onto these): probe and monitor answer kRunning, kNotRunning or
// kRunningPromoted; start, stop, promote and demote answer kOk or a failure.
enum class OpOutcome {
  kOk,               // done; for probe/monitor: running (OCF 0)
  kNotRunning,       // OCF 7: cleanly stopped
  kRunningPromoted,  // OCF 8
  kFailed,           // OCF 1-6, 9, or a failed check: needs a stop before anything else
  kTimeout,          // killed at its timeout; counts as failed
};
const char* op_outcome_name(OpOutcome outcome);

// Values Bulwark substitutes for ${BULWARK_...} and exports to every agent.
struct InstanceVars {
  std::string node;
  std::string node_address;
  std::string resource;
  std::string instance;  // RESOURCE:NODE

  // Those of `resource`'s instance on node `node` at `node_address`.
  static InstanceVars of(const std::string& node, const std::string& node_address,
                         const std::string& resource) {
    return {node, node_address, resource, resource + ":" + node};
  }
};

// What a notify operation tells an agent (OCF_RESKEY_CRM_meta_notify_*):
// an operation on some instances of its clone is about to happen ("pre")
// or has happened ("post"), and who is where. Lists hold node names; the
// runner also exports them as instance names (RESOURCE:NODE).
struct NotifyEvent {
  bool post = false;
  OpKind operation = OpKind::kStart;  // start, stop, promote or demote
  // The nodes of this operation ("start", "stop", "promote", "demote": one
  // is the operation's, the others empty), and the clone as it was before
  // it: "active", "inactive", "promoted", "unpromoted", "all".
  std::map<std::string, std::vector<std::string>> lists;
};

// The definition an instance was started with. The real runner keeps it
// beside the instance's pid file, so that a restarted daemon that adopts
// the instance knows what it runs, stops it with its own parameters, and
// restarts it if the applied definition differs.
struct RunningDefinition {
  ResourceSpec spec;
  int64_t restart_generation = 0;  // of `resource restart` (DirectivesRecord::restarts)
};

struct OpRequest {
  uint64_t id = 0;  // unique per runner; 0 is never used
  OpKind kind = OpKind::kProbe;
  // A copy: a resource removed from the file is still stopped with it, and
  // a running instance is stopped with the definition it was started with.
  ResourceSpec spec;
  // Start and reload: the `resource restart` generation the instance will
  // run under (recorded with the definition).
  int64_t restart_generation = 0;
  InstanceVars vars;
  int timeout_ms = 0;  // kill the operation (or, exec stop: SIGKILL) after this
  int clone_max = 0;   // clones: how many instances there may be
  NotifyEvent notify;  // kNotify only
};

struct OpCompletion {
  // The request answered; 0 for an unsolicited report: an exec resource's
  // process exited on its own.
  uint64_t id = 0;
  std::string resource;
  OpKind kind = OpKind::kMonitor;
  OpOutcome outcome = OpOutcome::kOk;
  std::string detail;  // for logs and `resource list`: exit status, check error
};

// Runs operations without blocking the caller. Completions are returned by
// the owner's poll (see ClassDispatcher); the node agent receives them through
// NodeAgent::on_completion.
class OperationRunner {
 public:
  virtual ~OperationRunner() = default;
  virtual void begin(const OpRequest& request) = 0;
  // Ends an operation at once (its command, if it runs one, is killed) and
  // drops its answer. What it did so far stays done: a cancelled start may
  // have left the resource running. The default does nothing, for runners
  // whose operations cannot be interrupted.
  virtual void cancel(uint64_t id) { (void)id; }
  // What the instance of `resource` found by a probe was started with, if
  // the runner recorded it (nullopt: unknown, e.g. started before Bulwark
  // recorded definitions, or by hand).
  virtual std::optional<RunningDefinition> recorded(const std::string& resource) const {
    (void)resource;
    return std::nullopt;
  }

  // The agent's loop (AgentLoop) drives the runner with these: handle
  // deadlines that passed, collect what completed, and learn the soonest
  // deadline to wake up for (mono ms). The defaults suit runners that
  // complete through other means.
  virtual void tick() {}
  virtual std::vector<OpCompletion> take_completions() { return {}; }
  virtual int64_t next_deadline_ms() const { return std::numeric_limits<int64_t>::max(); }
};

// The OCF_RESKEY_CRM_meta_notify_* variables of `event`, as KEY=VALUE
// entries, with the names both of Pacemaker 2.1 (promoted, unpromoted) and
// of older agents (master, slave). Lists are space-separated; an empty one
// is a single space.
std::vector<std::string> notify_environment(const NotifyEvent& event, const std::string& resource);

// ${BULWARK_NODE} and friends replaced in `text`.
std::string expand_vars(const std::string& text, const InstanceVars& vars);
// The BULWARK_* variables as KEY=VALUE entries.
std::vector<std::string> vars_environment(const InstanceVars& vars);

}  // namespace bulwark
