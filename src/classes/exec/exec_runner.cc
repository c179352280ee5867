#include "classes/exec/exec_runner.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/running_record.h"
#include "sys/process.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;

// An exec resource killed with SIGKILL at its stop timeout that still has
// not exited after this long (stuck in the kernel) makes the stop fail.
constexpr int64_t kKillWaitMs = 5000;
// Between tries of an exec resource's TCP/HTTP check while it starts.
constexpr int64_t kStartCheckRetryMs = 100;

bool checked(const OpRequest& r) {
  return !r.spec.monitor.tcp.empty() || !r.spec.monitor.http.empty();
}

}  // namespace

ClassRunnerFactory exec_class() {
  return [](const ClassContext& context) -> std::unique_ptr<ClassRunner> {
    return std::make_unique<ExecRunner>(context);
  };
}

ExecRunner::ExecRunner(const ClassContext& context) : CommandClass(context) {}

ExecRunner::~ExecRunner() {
  // Resources keep running without us (a restarted daemon adopts them).
  for (auto& [name, p] : running_) {
    context().loop.remove(p.pidfd);
    ::close(p.pidfd);
  }
}

std::string ExecRunner::pid_file(const std::string& resource) const {
  return context().runtime_dir + "/" + resource + ".pid";
}

std::optional<RunningDefinition> ExecRunner::recorded(const std::string& resource) const {
  // The pid file carries the definition after the pid line (one file per
  // start: creating files is what a start costs most).
  const std::string path = pid_file(resource);
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string pid_line;
  std::getline(in, pid_line);
  return read_running(in, path);  // nothing after the pid: an earlier version's file
}

void ExecRunner::begin_as(const OpRequest& request, const ResourceSpec& given) {
  given_[request.id] = given;
  CommandClass::begin(request);
  given_.erase(request.id);
}

bool ExecRunner::watch(const std::string& resource, Process& p) {
  p.pidfd = open_pidfd(p.pid);
  p.tag = context().tag_base | kOwnTag | next_tag_++;
  if (p.pidfd < 0 || !context().loop.add(p.pidfd, EPOLLIN, p.tag)) {
    if (p.pidfd >= 0) ::close(p.pidfd);
    return false;
  }
  by_tag_[p.tag] = resource;
  return true;
}

std::optional<ExecRunner::Process> ExecRunner::adopt(const std::string& resource) {
  std::ifstream f(pid_file(resource));
  Process p;
  if (!(f >> p.pid >> p.start_time)) return std::nullopt;
  // Ours only if the same process still has that pid: a pid the kernel has
  // since given to another process has another start time.
  if (process_start_time(p.pid) != p.start_time || !process_alive(p.pid)) {
    std::error_code ec;
    fs::remove(pid_file(resource), ec);
    return std::nullopt;
  }
  if (!watch(resource, p)) return std::nullopt;
  return p;
}

void ExecRunner::start(Op& op) {
  const OpRequest& r = op.request;
  const std::string& name = r.vars.resource;
  auto running = running_.find(name);
  switch (r.kind) {
    case OpKind::kProbe:
      if (running == running_.end()) {
        if (auto adopted = adopt(name)) {
          running = running_.emplace(name, *adopted).first;
          spdlog::info("agent: {} runs as pid {} (adopted)", name, adopted->pid);
        }
      }
      if (running == running_.end()) return complete(r.id, OpOutcome::kNotRunning, "");
      return complete(r.id, OpOutcome::kOk, "pid " + std::to_string(running->second.pid));
    case OpKind::kStart:
      if (running != running_.end())
        return checked(r) ? begin_check(op) : complete(r.id, OpOutcome::kOk, "");
      return spawn(op);
    case OpKind::kMonitor:
      if (running == running_.end() || !process_alive(running->second.pid))
        return complete(r.id, OpOutcome::kNotRunning, "not running");
      if (checked(r)) return begin_check(op);
      return complete(r.id, OpOutcome::kOk, "");
    case OpKind::kStop:
      if (running == running_.end()) return complete(r.id, OpOutcome::kOk, "not running");
      running->second.stop_op = r.id;
      ::kill(-running->second.pid, SIGTERM);
      ::kill(running->second.pid, SIGTERM);  // an adopted leader that left its group
      return;                                // completes when the pidfd reports the exit
    case OpKind::kPromote:
    case OpKind::kDemote:
      return complete(r.id, OpOutcome::kFailed, "exec resources have no promoted role");
    case OpKind::kNotify:
      return complete(r.id, OpOutcome::kFailed, "exec resources have no notify action");
    case OpKind::kReload:
      return complete(r.id, OpOutcome::kFailed, "exec resources have no reload action");
  }
}

void ExecRunner::spawn(Op& op) {
  const OpRequest& r = op.request;
  const std::string& name = r.vars.resource;
  SpawnOptions o;
  for (const auto& a : r.spec.agent.command) o.argv.push_back(expand_vars(a, r.vars));
  o.env = base_environment(r);
  for (const auto& [k, v] : r.spec.agent.params) o.env.push_back(k + "=" + expand_vars(v, r.vars));
  o.user = r.spec.agent.user;
  o.working_dir = r.spec.agent.working_dir.empty() ? "/" : r.spec.agent.working_dir;
  o.log_file = log_file(name);
  o.new_process_group = true;  // stop reaches its children; a node kill reaches it
  auto pid = spawn_process(o);
  if (!pid) return complete(r.id, OpOutcome::kFailed, pid.error().message);
  Process p;
  p.pid = *pid;
  p.start_time = process_start_time(*pid).value_or(0);
  if (!watch(name, p)) {
    ::kill(-*pid, SIGKILL);
    terminate_process(*pid, 0);
    return complete(r.id, OpOutcome::kFailed, "cannot watch pid " + std::to_string(*pid));
  }
  {
    auto given = given_.find(r.id);
    const ResourceSpec& spec = given == given_.end() ? r.spec : given->second;
    const std::string tmp = pid_file(name) + ".tmp";
    std::ofstream(tmp) << p.pid << " " << p.start_time << "\n"
                       << encode_running(RunningDefinition{spec, r.restart_generation}) << "\n";
    std::error_code ec;
    fs::rename(tmp, pid_file(name), ec);
  }
  running_[name] = p;
  if (checked(r)) return begin_check(op);
  complete(r.id, OpOutcome::kOk, "pid " + std::to_string(p.pid));
}

void ExecRunner::on_result(Op& op, const CheckResult& res) {
  const OpRequest& r = op.request;
  const int64_t now = context().clock.mono_ms();
  if (r.kind == OpKind::kStart && !res.ok) {
    // Not serving yet: try again until the start timeout.
    if (now + kStartCheckRetryMs < op.deadline_ms) {
      op.retry_at_ms = now + kStartCheckRetryMs;
      return;
    }
    return complete(r.id, OpOutcome::kTimeout, "never passed its check: " + res.detail);
  }
  complete(r.id, res.ok ? OpOutcome::kOk : OpOutcome::kFailed, res.detail);
}

void ExecRunner::on_retry(Op& op) {
  if (!running_.count(op.request.vars.resource))
    return complete(op.request.id, OpOutcome::kFailed, "the process exited while starting");
  begin_check(op);
}

bool ExecRunner::on_deadline(Op& op) {
  const OpRequest& r = op.request;
  if (r.kind != OpKind::kStop) return false;
  // A stop's deadline: SIGKILL to the group, and its exit awaited a while.
  op.kill_at_ms = context().clock.mono_ms() + kKillWaitMs;
  if (auto p = running_.find(r.vars.resource); p != running_.end()) {
    spdlog::warn("agent: {} did not stop within {} ms; SIGKILL", r.vars.resource, r.timeout_ms);
    ::kill(-p->second.pid, SIGKILL);
    ::kill(p->second.pid, SIGKILL);
  }
  return true;
}

bool ExecRunner::on_kill_deadline(Op& op) {
  if (op.request.kind != OpKind::kStop) return false;
  complete(op.request.id, OpOutcome::kFailed, "still running after SIGKILL");
  return true;
}

void ExecRunner::on_cancel(Op& op) {
  // The resource's own process is not the operation's: it stays, and so
  // does a stop's claim on it (a stop is never cancelled).
  for (auto& [name, p] : running_) {
    if (p.stop_op == op.request.id) p.stop_op = 0;
  }
}

void ExecRunner::on_event(uint64_t tag, uint32_t events) {
  if (!(tag & kOwnTag)) return CommandClass::on_event(tag, events);
  auto it = by_tag_.find(tag);
  // A copy: on_exit erases the entry it would otherwise refer to.
  if (it != by_tag_.end()) on_exit(std::string(it->second));
}

void ExecRunner::forget(const std::string& resource) {
  auto it = running_.find(resource);
  if (it == running_.end()) return;
  context().loop.remove(it->second.pidfd);
  ::close(it->second.pidfd);
  by_tag_.erase(it->second.tag);
  running_.erase(it);
  std::error_code ec;
  fs::remove(pid_file(resource), ec);
}

void ExecRunner::on_exit(const std::string& resource) {
  const Process p = running_.at(resource);
  // Our child: reap it now (never leave a zombie that looks alive). An
  // adopted process is not our child; its exit is all we learn.
  const auto status = try_reap(p.pid);
  const std::string detail = status ? describe_wait_status(*status) : "exited";
  // What it left in its group must not outlive it.
  ::kill(-p.pid, SIGKILL);
  forget(resource);
  if (p.stop_op != 0) {
    auto op = ops().find(p.stop_op);
    const bool killed = op != ops().end() && op->second.timed_out;
    return complete(p.stop_op, OpOutcome::kOk, killed ? "killed at the stop timeout" : detail);
  }
  std::vector<uint64_t> waiting;
  for (const auto& [id, op] : ops()) {
    if (op.request.vars.resource == resource) waiting.push_back(id);
  }
  for (uint64_t id : waiting)
    complete(id, OpOutcome::kFailed, "the process exited (" + detail + ")");
  spdlog::warn("agent: {} exited on its own ({})", resource, detail);
  report(OpCompletion{0, resource, OpKind::kMonitor, OpOutcome::kNotRunning,
                      "the process exited (" + detail + ")"});
}

}  // namespace bulwark
