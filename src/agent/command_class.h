// The part every class whose operations are commands shares (exec, ocf,
// systemd): each operation has a deadline; a command still running then
// gets SIGTERM, and SIGKILL kOperationTermGraceMs later, and the operation
// counts as timed out. A class says how an operation begins (start) and
// what a finished command or check means (on_result); exec, whose
// resource is a process of its own, also takes over the deadlines of its
// stops and retries its start checks (the hooks below).
//
// Thread-safety: the loop's thread only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/class_runner.h"
#include "sys/check_probe.h"

namespace bulwark {

class CommandClass : public ClassRunner {
 public:
  explicit CommandClass(const ClassContext& context);

  void begin(const OpRequest& request) override;
  void cancel(uint64_t id) override;
  void on_event(uint64_t tag, uint32_t events) override;
  void tick() override;
  int64_t next_deadline_ms() const override;
  void take_completions(std::vector<OpCompletion>& out) override;

 protected:
  // Operations' loop events are tag_base | their id (below kOwnTag); a
  // class's own (exec: its processes' pidfds) tag_base | kOwnTag | a counter.
  static constexpr uint64_t kOwnTag = uint64_t{1} << 51;

  struct Op {
    OpRequest request;
    std::unique_ptr<CheckProbe> probe;  // the command or check under way
    int64_t deadline_ms = 0;
    int64_t kill_at_ms = 0;   // after SIGTERM at the deadline: SIGKILL then
    int64_t retry_at_ms = 0;  // a class's own schedule (exec: its start check)
    bool timed_out = false;
  };

  // Begins `op`, whose probe is ready and deadline set.
  virtual void start(Op& op) = 0;
  // What the command or check of `op` came to.
  virtual void on_result(Op& op, const CheckResult& result) = 0;
  // At op.retry_at_ms (reset before the call).
  virtual void on_retry(Op& op) { (void)op; }
  // At the deadline (true: the class handled it, setting op.kill_at_ms)
  // and at op.kill_at_ms after it (true: handled).
  virtual bool on_deadline(Op& op) {
    (void)op;
    return false;
  }
  virtual bool on_kill_deadline(Op& op) {
    (void)op;
    return false;
  }
  // A class's cancel: after the probe is killed, before the op is dropped.
  virtual void on_cancel(Op& op) { (void)op; }

  // Runs argv with env (output to the resource's log); false if it has
  // already completed (it could not run). What the command leaves running
  // when it exits is killed with its process group unless `keep_leftovers`
  // (CheckTarget::keep_leftovers); at the deadline the group is ended anyway.
  bool begin_command(Op& op, std::vector<std::string> argv, std::vector<std::string> env,
                     bool keep_leftovers = false);
  // A TCP or HTTP check of op's monitor settings.
  void begin_check(Op& op);
  void complete(uint64_t id, OpOutcome outcome, std::string detail);
  // An answer that belongs to no operation (exec: a process that exited on
  // its own).
  void report(OpCompletion completion) { completions_.push_back(std::move(completion)); }
  // PATH, LANG, HOME, the inherited entries and the BULWARK_* variables.
  std::vector<std::string> base_environment(const OpRequest& r) const;
  std::string log_file(const std::string& resource) const;
  std::map<uint64_t, Op>& ops() { return ops_; }
  const ClassContext& context() const { return context_; }

 private:
  ClassContext context_;
  std::map<uint64_t, Op> ops_;
  std::vector<OpCompletion> completions_;
};

}  // namespace bulwark
