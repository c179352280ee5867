// The node agent's OperationRunner in bulwarkd: hands each operation to the
// runner of its agent class (class_runner.h), all on the agent thread's
// EventLoop, never blocking it. The classes are registered by bulwarkd
// (src/classes: exec, ocf, systemd, vip, proxy); an operation of a class
// that is not registered fails. What an instance was started with is kept,
// for a restarted daemon, by its class (exec's pid file) or here, in a
// definition file beside it (running_record.h).
//
// Thread-safety: the loop's thread only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/class_runner.h"
#include "agent/operation.h"
#include "core/env.h"
#include "sys/event_loop.h"

namespace bulwark {

struct ClassDispatcherOptions {
  std::string runtime_dir;  // pid files and agents' state; emptied after a reboot
  std::string log_dir;      // one log per resource (its output, its agent's)
  // KEY=VALUE entries every agent and resource gets besides its own (a dev
  // node's process-tree marker).
  std::vector<std::string> inherited_env;
  // The classes this node runs.
  std::map<AgentClass, ClassRunnerFactory> classes;
};

class ClassDispatcher final : public OperationRunner {
 public:
  ClassDispatcher(const Clock& clock, EventLoop& loop, ClassDispatcherOptions options);

  void begin(const OpRequest& request) override;
  void cancel(uint64_t id) override;
  std::optional<RunningDefinition> recorded(const std::string& resource) const override;
  // True if the loop event with this tag belongs to a class runner.
  static bool owns(uint64_t tag) { return (tag & kTagRunner) != 0; }
  void on_event(uint64_t tag, uint32_t events);
  void tick() override;
  int64_t next_deadline_ms() const override;
  std::vector<OpCompletion> take_completions() override;

  // Every class follows the cluster after the agent's step (ClassRunner::
  // follow); the announced stops they drained, for NodeAgent::acknowledge.
  void follow(const ClusterState& state, const std::string& self, const NodeStatusRecord& local);
  std::vector<ServerDrain> take_drained();

 private:
  // A class runner's events: kTagRunner | its index << kClassShift | its own.
  static constexpr uint64_t kTagRunner = uint64_t{1} << 62;
  static constexpr int kClassShift = 52;

  ClassRunner* runner_of(AgentClass agent_class) const;
  std::string definition_file(const std::string& resource) const;
  // Keeps (start, reload) or forgets (stop) what a completed operation
  // leaves running, for the classes that do not keep it themselves.
  void record_definition(const OpCompletion& c);

  ClassDispatcherOptions options_;
  std::vector<OpCompletion> completions_;  // of operations no class took
  // Starts, reloads and stops in flight: what their completion leaves
  // running is recorded.
  std::map<uint64_t, OpRequest> recording_;
  // The registered classes, in the order of their tag index.
  std::vector<std::pair<AgentClass, std::unique_ptr<ClassRunner>>> classes_;
};

}  // namespace bulwark
