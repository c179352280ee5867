// The built-in `exec` agent class: the command itself is the resource.
// Started in a process group of its own, watched through a pidfd (its exit
// is reported at once, as an unsolicited NotRunning), stopped with SIGTERM
// to the group and SIGKILL at the stop timeout. Its pid, start time and the
// definition it was started with are kept in a pid file in the runtime
// directory, so that a restarted daemon adopts it (probe) and knows what it
// runs. A `monitor: {tcp|http}` check is also what a start waits for.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "agent/command_class.h"

namespace bulwark {

// The `exec` class, for ClassDispatcherOptions::classes.
ClassRunnerFactory exec_class();

class ExecRunner final : public CommandClass {
 public:
  explicit ExecRunner(const ClassContext& context);
  ~ExecRunner() override;
  ExecRunner(const ExecRunner&) = delete;
  ExecRunner& operator=(const ExecRunner&) = delete;

  // Begins `request`, recording `given` as what the instance runs (a class
  // built on exec, such as proxy, records its own definition, not the
  // command it runs it with).
  void begin_as(const OpRequest& request, const ResourceSpec& given);
  void begin(const OpRequest& request) override { begin_as(request, request.spec); }
  void on_event(uint64_t tag, uint32_t events) override;
  bool records_definitions() const override { return true; }
  std::optional<RunningDefinition> recorded(const std::string& resource) const override;

 private:
  // A running exec resource.
  struct Process {
    pid_t pid = -1;  // also its process group
    uint64_t start_time = 0;
    int pidfd = -1;
    uint64_t tag = 0;
    uint64_t stop_op = 0;  // the stop in progress, 0 if none
  };

  void start(Op& op) override;
  void on_result(Op& op, const CheckResult& result) override;
  void on_retry(Op& op) override;
  bool on_deadline(Op& op) override;
  bool on_kill_deadline(Op& op) override;
  void on_cancel(Op& op) override;

  void spawn(Op& op);
  // The watch on a process: its pidfd in the loop. False (and the pidfd
  // closed) if it cannot be watched.
  bool watch(const std::string& resource, Process& p);
  void on_exit(const std::string& resource);
  std::optional<Process> adopt(const std::string& resource);
  void forget(const std::string& resource);
  std::string pid_file(const std::string& resource) const;

  std::map<std::string, Process> running_;
  std::map<uint64_t, std::string> by_tag_;
  uint64_t next_tag_ = 1;
  // The definition each start in flight records (begin_as).
  std::map<uint64_t, ResourceSpec> given_;
};

}  // namespace bulwark
