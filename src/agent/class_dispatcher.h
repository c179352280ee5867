// The real OperationRunner: resource agents as processes, on the agent
// thread's EventLoop, never blocking it.
//   exec      the command itself is the resource: started in a process group
//             of its own, watched through a pidfd (its exit is reported at
//             once), stopped with SIGTERM to the group and SIGKILL at the
//             stop timeout; its pid and start time are kept in the runtime
//             directory so that a restarted daemon adopts it.
//   ocf       the agent script run per action, parameters as OCF_RESKEY_*
//             environment (never through a shell), exit codes mapped.
//   systemd   systemctl start/stop/is-active, where systemd is PID 1.
//   vip       handed to the class's ClassRunner (src/vip, registered by
//             bulwarkd in `classes`): no process at all.
//   proxy     bulwark-proxy run as an exec resource on a file in the runtime
//             directory (ProxyController keeps it current).
// Every operation has a deadline; a command still running then gets SIGTERM,
// then SIGKILL, and the operation counts as timed out. The definition an
// instance was started with is kept beside its pid file
// (running_record.h), for a restarted daemon.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/class_runner.h"
#include "agent/operation.h"
#include "core/env.h"
#include "sys/check_probe.h"
#include "sys/event_loop.h"

namespace bulwark {

struct ProcessRunnerOptions {
  std::string runtime_dir;  // pid files and OCF state; emptied after a reboot
  std::string log_dir;      // one log per resource (its output, its agent's)
  std::string ocf_root = "/usr/lib/ocf";
  std::string systemctl = "/usr/bin/systemctl";
  std::string systemd_marker = "/run/systemd/system";   // exists iff systemd is PID 1
  std::string proxy_binary = "/usr/bin/bulwark-proxy";  // what a `proxy` resource runs
  // KEY=VALUE entries every agent and resource gets besides its own (a dev
  // node's process-tree marker).
  std::vector<std::string> inherited_env;
  // Classes whose operations a ClassRunner runs (bulwarkd: vip). An
  // operation of such a class that is not registered fails.
  std::map<AgentClass, ClassRunnerFactory> classes;
};

class ProcessRunner final : public OperationRunner {
 public:
  ProcessRunner(const Clock& clock, EventLoop& loop, ProcessRunnerOptions options);
  ~ProcessRunner() override;

  void begin(const OpRequest& request) override;
  void cancel(uint64_t id) override;
  std::optional<RunningDefinition> recorded(const std::string& resource) const override;
  // True if the loop event with this tag belongs to the runner.
  static bool owns(uint64_t tag) { return (tag & kTagRunner) != 0; }
  void on_event(uint64_t tag, uint32_t events);
  // Deadlines: call on every loop turn.
  void tick() override;
  // The soonest deadline, for the loop's wait.
  int64_t next_deadline_ms() const override;
  std::vector<OpCompletion> take_completions() override;

 private:
  static constexpr uint64_t kTagRunner = uint64_t{1} << 62;
  static constexpr uint64_t kTagExec = uint64_t{1} << 61;
  // A class runner's events: kTagClass | its index << kClassShift | its counter.
  static constexpr uint64_t kTagClass = uint64_t{1} << 60;
  static constexpr int kClassShift = 52;

  // A running exec resource.
  struct ExecProcess {
    pid_t pid = -1;  // also its process group
    uint64_t start_time = 0;
    int pidfd = -1;
    uint64_t tag = 0;
    uint64_t stop_op = 0;  // the stop in progress, 0 if none
  };
  struct Op {
    OpRequest request;
    std::unique_ptr<CheckProbe> probe;  // the command or check under way
    int64_t deadline_ms = 0;
    int64_t kill_at_ms = 0;   // after SIGTERM at the deadline: SIGKILL then
    int64_t retry_at_ms = 0;  // exec start: next try of its check
    bool timed_out = false;
  };

  void begin_exec(Op& op);
  void begin_ocf(Op& op);
  void begin_systemd(Op& op);
  bool begin_command(Op& op, std::vector<std::string> argv, std::vector<std::string> env);
  void begin_exec_check(Op& op);
  void on_exec_exit(const std::string& resource);
  void on_probe_result(Op& op, const CheckResult& r);
  void complete(uint64_t id, OpOutcome outcome, std::string detail);
  std::optional<ExecProcess> adopt(const std::string& resource);
  std::string pid_file(const std::string& resource) const;
  std::string definition_file(const std::string& resource) const;
  // Keeps (start, reload) or forgets (stop) what a completed operation
  // leaves running.
  void record_definition(const OpCompletion& c);
  std::vector<std::string> base_environment(const OpRequest& r) const;
  void forget_exec(const std::string& resource);

  const Clock& clock_;
  EventLoop& loop_;
  ProcessRunnerOptions options_;
  std::map<uint64_t, Op> ops_;
  std::map<std::string, ExecProcess> exec_;
  std::map<uint64_t, std::string> exec_by_tag_;
  uint64_t next_exec_tag_ = 1;
  std::vector<OpCompletion> completions_;
  // Starts, reloads and stops in flight (every class, VIPs included): what
  // their completion leaves running is recorded.
  std::map<uint64_t, OpRequest> recording_;
  // The registered classes, in the order of their tag index.
  std::vector<std::pair<AgentClass, std::unique_ptr<ClassRunner>>> classes_;
};

}  // namespace bulwark
