// The simulated OperationRunner: answers the node agent's operations from
// the ground truth (sim_processes.h) after random delays, with the failures
// a schedule injects, and with the timeout rules of the classes that run
// commands (src/agent/command_class.h, src/classes/exec, src/classes/ocf):
//   exec  the process is the resource. Start spawns it; stop sends SIGTERM
//         and the process exits later on its own, or, if it hangs, gets
//         SIGKILL at the stop's deadline and the stop succeeds. Its exit
//         is reported at once (pidfd), also unasked (a completion with id 0).
//   ocf   every operation is a script that takes a while; at its deadline
//         it is killed and the operation times out without its effect.
// Deadlines are enforced by tick(), which runs on the agent's thread, as in
// bulwarkd: a paused agent thread enforces none.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/operation.h"
#include "core/env.h"
#include "sim/sim_world.h"

namespace bulwark::sim {

class SimRunner final : public OperationRunner {
 public:
  SimRunner(const Clock& clock, SimWorld& world, int node)
      : clock_(clock), world_(world), node_(node) {}

  void begin(const OpRequest& request) override;
  // ClassDispatcher::cancel: the operation ends at once without an answer; an
  // OCF script is killed before it did what it was for, what it already did
  // stays (a started process, a promotion), and an exec process stays.
  void cancel(uint64_t id) override;
  // ClassDispatcher::recorded: what the running life was started with.
  std::optional<RunningDefinition> recorded(const std::string& resource) const override;
  // Operations that finish as time passes, whatever the agent thread does.
  void poll();
  // ClassDispatcher::tick: deadlines (agent thread only).
  void tick() override;
  std::vector<OpCompletion> take_completions() override;
  bool has_completions() const { return !completions_.empty(); }
  // The soonest deadline tick() must see (local mono ms).
  int64_t next_deadline_ms() const override;
  // An instance of this node exited (Processes::on_exit).
  void on_exit(const std::string& resource);

 private:
  struct Op {
    OpRequest request;
    int64_t done_ms = 0;  // local; INT64_MAX: only an exit or the deadline ends it
    int64_t deadline_ms = 0;
    uint64_t life = 0;    // the instance life it acts on
    uint64_t effect = 0;  // its scheduled ground-truth change, 0 if none
    OpOutcome outcome = OpOutcome::kOk;
  };
  bool exec(const OpRequest& r) const { return r.spec.agent.agent_class == AgentClass::kExec; }
  int64_t delay_ms(const OpRequest& r);
  void begin_exec(Op& op);
  void begin_ocf(Op& op);
  // The answer of a probe or monitor: what runs now.
  OpOutcome observe(const OpRequest& r) const;
  void complete(uint64_t id, OpOutcome outcome, const std::string& detail);
  uint64_t schedule(int64_t after_ms, const Op& op, EffectKind kind, const std::string& why);

  const Clock& clock_;
  SimWorld& world_;
  int node_;
  std::map<uint64_t, Op> ops_;
  std::vector<OpCompletion> completions_;
  // exec resources whose process this runner started or adopted: their
  // exits it learns of.
  std::set<std::string> watched_;
};

}  // namespace bulwark::sim
