#include "agent/process_runner.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>

#include "agent/proxy_controller.h"
#include "agent/running_record.h"
#include "core/check.h"
#include "sys/process.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;

// An exec resource killed with SIGKILL at its stop timeout that still has
// not exited after this long (stuck in the kernel) makes the stop fail.
constexpr int64_t kKillWaitMs = 5000;
// Between tries of an exec resource's TCP/HTTP check while it starts.
constexpr int64_t kStartCheckRetryMs = 100;

// OCF exit codes (OCF resource agent API 1.1, section "Return codes").
constexpr int kOcfNotInstalled = 5;
constexpr int kOcfNotRunning = 7;
constexpr int kOcfRunningPromoted = 8;
constexpr int kOcfFailedPromoted = 9;

std::string ocf_action(const OpRequest& r) {
  if (r.kind == OpKind::kProbe) return "monitor";
  if (r.kind == OpKind::kReload) return r.spec.agent.reload.action;
  return op_kind_name(r.kind);
}

// "http://192.0.2.1:8000/health" -> address and path. Literal addresses
// only: a check must not depend on a name server.
Result<CheckTarget> http_target(const std::string& url) {
  const std::string rest = url.substr(std::string("http://").size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  auto address = parse_socket_address(authority);
  if (!address) return make_error(Errc::kInvalid, "monitor http: " + address.error().message);
  CheckTarget t;
  t.kind = CheckKind::kHttp;
  t.address = *address;
  t.http_path = slash == std::string::npos ? "/" : rest.substr(slash);
  return t;
}

}  // namespace

ProcessRunner::ProcessRunner(const Clock& clock, EventLoop& loop, ProcessRunnerOptions options)
    : clock_(clock), loop_(loop), options_(std::move(options)) {
  for (const auto& [agent_class, make] : options_.classes) {
    const uint64_t index = classes_.size();
    BW_CHECK(index < 16, "at most 16 class runners");
    classes_.emplace_back(agent_class, make(clock_, loop_, options_.runtime_dir,
                                            kTagRunner | kTagClass | (index << kClassShift)));
  }
  std::error_code ec;
  fs::create_directories(options_.runtime_dir, ec);
  fs::create_directories(options_.runtime_dir + "/ocf", ec);
  fs::create_directories(options_.log_dir, ec);
}

ProcessRunner::~ProcessRunner() {
  // Resources keep running without us (a restarted daemon adopts them);
  // operations in flight are ended by their probes' destructors.
  for (auto& [name, e] : exec_) {
    loop_.remove(e.pidfd);
    ::close(e.pidfd);
  }
}

std::string ProcessRunner::pid_file(const std::string& resource) const {
  return options_.runtime_dir + "/" + resource + ".pid";
}

std::string ProcessRunner::definition_file(const std::string& resource) const {
  return options_.runtime_dir + "/" + resource + ".definition.json";
}

std::optional<RunningDefinition> ProcessRunner::recorded(const std::string& resource) const {
  // An exec process's pid file carries its definition after the pid line
  // (one file per start: creating files is what a start costs most).
  std::string path = pid_file(resource);
  std::ifstream in(path);
  if (in) {
    std::string pid_line;
    std::getline(in, pid_line);
  } else {
    path = definition_file(resource);
    in = std::ifstream(path);
    if (!in) return std::nullopt;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) return std::nullopt;  // a pid file of an earlier version
  auto out = decode_running(text);
  if (!out) spdlog::warn("agent: the definition in {} cannot be read; ignored", path);
  return out;
}

void ProcessRunner::record_definition(const OpCompletion& c) {
  auto it = recording_.find(c.id);
  if (it == recording_.end()) return;
  const OpRequest r = std::move(it->second);
  recording_.erase(it);
  const std::string path = definition_file(r.vars.resource);
  std::error_code ec;
  if (r.kind == OpKind::kStop) {
    if (c.outcome == OpOutcome::kOk || c.outcome == OpOutcome::kNotRunning) fs::remove(path, ec);
    return;
  }
  // exec and proxy processes: recorded in their pid file at spawn.
  const AgentClass k = r.spec.agent.agent_class;
  if (k == AgentClass::kExec || k == AgentClass::kProxy) return;
  // A failed start may have left something running: what it was started
  // with is what a stop must use.
  if (r.kind == OpKind::kReload && c.outcome != OpOutcome::kOk) return;
  // Written in place: a record torn by a crash reads as unknown.
  std::ofstream out(path, std::ios::trunc);
  out << encode_running(RunningDefinition{r.spec, r.restart_generation}) << "\n";
  if (!out) spdlog::warn("agent: cannot record {}", path);
}

std::vector<std::string> ProcessRunner::base_environment(const OpRequest& r) const {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
      "HOME=/"};
  env.insert(env.end(), options_.inherited_env.begin(), options_.inherited_env.end());
  for (auto& v : vars_environment(r.vars)) env.push_back(std::move(v));
  return env;
}

void ProcessRunner::begin(const OpRequest& request) {
  if (request.kind == OpKind::kStart || request.kind == OpKind::kReload ||
      request.kind == OpKind::kStop)
    recording_[request.id] = request;
  for (auto& [agent_class, runner] : classes_) {
    if (agent_class == request.spec.agent.agent_class) return runner->begin(request);
  }
  Op& op = ops_[request.id];
  op.request = request;
  if (request.spec.agent.agent_class == AgentClass::kProxy) {
    // An exec resource whose command is bulwark-proxy on its file. The
    // first start writes a file with no servers and no loopback frontends;
    // ProxyController fills it in as soon as the proxy runs.
    const std::string path = proxy_config_path(options_.runtime_dir, request.vars.resource);
    if (request.kind == OpKind::kStart && !fs::exists(path)) {
      auto text = render_cluster_proxy_config(request.spec, ResourceConfig{}, options_.runtime_dir,
                                              ProxyInputs{});
      if (!text) return complete(request.id, OpOutcome::kFailed, text.error().message);
      std::ofstream(path) << *text;
    }
    op.request.spec.agent.command = {options_.proxy_binary, "--config", path};
  }
  op.deadline_ms = clock_.mono_ms() + request.timeout_ms;
  op.probe = std::make_unique<CheckProbe>(loop_, kTagRunner | request.id);
  switch (request.spec.agent.agent_class) {
    case AgentClass::kExec:
      return begin_exec(op);
    case AgentClass::kOcf:
      return begin_ocf(op);
    case AgentClass::kSystemd:
      return begin_systemd(op);
    case AgentClass::kProxy:
      return begin_exec(op);
    case AgentClass::kVip:
      // Its runner is registered by bulwarkd; none here.
      return complete(request.id, OpOutcome::kFailed,
                      "agent class vip is not available in this process");
  }
}

void ProcessRunner::cancel(uint64_t id) {
  for (auto& [agent_class, runner] : classes_) runner->cancel(id);
  // A cancelled start may have started it: what it ran with stays recorded.
  if (auto r = recording_.find(id); r != recording_.end()) {
    if (r->second.kind == OpKind::kStart)
      record_definition(
          OpCompletion{id, r->second.vars.resource, OpKind::kStart, OpOutcome::kOk, ""});
    recording_.erase(id);
  }
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  // An exec resource's own process is not the operation's: it stays, and
  // so does a stop's claim on it (a stop is never cancelled).
  for (auto& [name, e] : exec_) {
    if (e.stop_op == id) e.stop_op = 0;
  }
  it->second.probe->cancel(SIGKILL);
  ops_.erase(it);
}

std::optional<ProcessRunner::ExecProcess> ProcessRunner::adopt(const std::string& resource) {
  std::ifstream f(pid_file(resource));
  pid_t pid = 0;
  uint64_t start_time = 0;
  if (!(f >> pid >> start_time)) return std::nullopt;
  // Ours only if the same process still has that pid: a pid the kernel has
  // since given to another process has another start time.
  if (process_start_time(pid) != start_time || !process_alive(pid)) {
    std::error_code ec;
    fs::remove(pid_file(resource), ec);
    return std::nullopt;
  }
  ExecProcess e;
  e.pid = pid;
  e.start_time = start_time;
  e.pidfd = open_pidfd(pid);
  if (e.pidfd < 0) return std::nullopt;
  e.tag = kTagRunner | kTagExec | next_exec_tag_++;
  if (!loop_.add(e.pidfd, EPOLLIN, e.tag)) {
    ::close(e.pidfd);
    return std::nullopt;
  }
  exec_by_tag_[e.tag] = resource;
  return e;
}

void ProcessRunner::begin_exec(Op& op) {
  const OpRequest& r = op.request;
  const std::string& name = r.vars.resource;
  const bool checked = !r.spec.monitor.tcp.empty() || !r.spec.monitor.http.empty();
  auto running = exec_.find(name);
  switch (r.kind) {
    case OpKind::kProbe:
      if (running == exec_.end()) {
        if (auto adopted = adopt(name)) {
          running = exec_.emplace(name, *adopted).first;
          spdlog::info("agent: {} runs as pid {} (adopted)", name, adopted->pid);
        }
      }
      if (running == exec_.end()) return complete(r.id, OpOutcome::kNotRunning, "");
      return complete(r.id, OpOutcome::kOk, "pid " + std::to_string(running->second.pid));
    case OpKind::kStart: {
      if (running != exec_.end())
        return checked ? begin_exec_check(op) : complete(r.id, OpOutcome::kOk, "");
      SpawnOptions o;
      for (const auto& a : r.spec.agent.command) o.argv.push_back(expand_vars(a, r.vars));
      o.env = base_environment(r);
      for (const auto& [k, v] : r.spec.agent.params)
        o.env.push_back(k + "=" + expand_vars(v, r.vars));
      o.user = r.spec.agent.user;
      o.working_dir = r.spec.agent.working_dir.empty() ? "/" : r.spec.agent.working_dir;
      o.log_file = options_.log_dir + "/" + name + ".log";
      o.new_process_group = true;  // stop reaches its children; a node kill reaches it
      auto pid = spawn_process(o);
      if (!pid) return complete(r.id, OpOutcome::kFailed, pid.error().message);
      ExecProcess e;
      e.pid = *pid;
      e.start_time = process_start_time(*pid).value_or(0);
      e.pidfd = open_pidfd(*pid);
      e.tag = kTagRunner | kTagExec | next_exec_tag_++;
      if (e.pidfd < 0 || !loop_.add(e.pidfd, EPOLLIN, e.tag)) {
        ::kill(-*pid, SIGKILL);
        if (e.pidfd >= 0) ::close(e.pidfd);
        terminate_process(*pid, 0);
        return complete(r.id, OpOutcome::kFailed, "cannot watch pid " + std::to_string(*pid));
      }
      {
        // The definition as the agent gave it (a proxy's command is ours).
        auto given = recording_.find(r.id);
        const ResourceSpec& spec = given == recording_.end() ? r.spec : given->second.spec;
        const std::string tmp = pid_file(name) + ".tmp";
        std::ofstream(tmp) << e.pid << " " << e.start_time << "\n"
                           << encode_running(RunningDefinition{spec, r.restart_generation}) << "\n";
        std::error_code ec;
        fs::rename(tmp, pid_file(name), ec);
      }
      exec_by_tag_[e.tag] = name;
      exec_[name] = e;
      if (checked) return begin_exec_check(op);
      return complete(r.id, OpOutcome::kOk, "pid " + std::to_string(e.pid));
    }
    case OpKind::kMonitor:
      if (running == exec_.end() || !process_alive(running->second.pid))
        return complete(r.id, OpOutcome::kNotRunning, "not running");
      if (checked) return begin_exec_check(op);
      return complete(r.id, OpOutcome::kOk, "");
    case OpKind::kStop:
      if (running == exec_.end()) return complete(r.id, OpOutcome::kOk, "not running");
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

void ProcessRunner::begin_exec_check(Op& op) {
  const MonitorSpec& m = op.request.spec.monitor;
  Result<CheckTarget> target = make_error(Errc::kInvalid, "no check");
  if (!m.http.empty()) {
    target = http_target(expand_vars(m.http, op.request.vars));
  } else {
    auto address = parse_socket_address(expand_vars(m.tcp, op.request.vars));
    if (address) {
      CheckTarget t;
      t.address = *address;
      target = t;
    } else {
      target = make_error(Errc::kInvalid, "monitor tcp: " + address.error().message);
    }
  }
  if (!target) return complete(op.request.id, OpOutcome::kFailed, target.error().message);
  if (auto done = op.probe->begin(*target)) on_probe_result(op, *done);
}

bool ProcessRunner::begin_command(Op& op, std::vector<std::string> argv,
                                  std::vector<std::string> env) {
  CheckTarget t;
  t.kind = CheckKind::kCommand;
  t.command.argv = std::move(argv);
  t.command.env = std::move(env);
  t.command.log_file = options_.log_dir + "/" + op.request.vars.resource + ".log";
  if (auto done = op.probe->begin(t)) {
    on_probe_result(op, *done);
    return false;
  }
  return true;
}

void ProcessRunner::begin_ocf(Op& op) {
  const OpRequest& r = op.request;
  const AgentSpec& a = r.spec.agent;
  const std::string script = options_.ocf_root + "/resource.d/" + a.provider + "/" + a.type;
  if (::access(script.c_str(), X_OK) != 0) {
    // Not installed here: certainly not running here either.
    const std::string why = "no OCF agent at " + script;
    if (r.kind == OpKind::kProbe || r.kind == OpKind::kStop)
      return complete(r.id, r.kind == OpKind::kStop ? OpOutcome::kOk : OpOutcome::kNotRunning, why);
    return complete(r.id, OpOutcome::kFailed, why);
  }
  std::vector<std::string> env = base_environment(r);
  env.push_back("OCF_ROOT=" + options_.ocf_root);
  env.push_back("OCF_FUNCTIONS_DIR=" + options_.ocf_root + "/lib/heartbeat");
  env.push_back("OCF_RA_VERSION_MAJOR=1");
  env.push_back("OCF_RA_VERSION_MINOR=1");
  env.push_back("OCF_RESOURCE_INSTANCE=" + r.vars.resource);
  env.push_back("OCF_RESOURCE_PROVIDER=" + a.provider);
  env.push_back("OCF_RESOURCE_TYPE=" + a.type);
  // State files of agents (ocf-directories' HA_RSCTMP) live in this node's
  // runtime directory: nodes sharing a host never see each other's.
  env.push_back("HA_RSCTMP=" + options_.runtime_dir + "/ocf");
  env.push_back("OCF_RESKEY_CRM_meta_timeout=" + std::to_string(r.timeout_ms));
  env.push_back("OCF_RESKEY_CRM_meta_interval=" +
                std::to_string(r.kind == OpKind::kMonitor ? r.spec.monitor.interval_ms : 0));
  env.push_back("OCF_RESKEY_CRM_meta_on_node=" + r.vars.node);
  if (r.spec.kind != ResourceKind::kSingleton) {
    // Pacemaker's clone meta attributes, promoted ones under their old
    // names too (agents such as mariadb read master_max).
    const std::string meta = "OCF_RESKEY_CRM_meta_";
    const bool promotable = r.spec.kind == ResourceKind::kPromotable;
    env.push_back(meta + "clone_max=" + std::to_string(r.clone_max));
    env.push_back(meta + "clone_node_max=1");
    env.push_back(meta + "notify=" + (r.spec.notify ? "true" : "false"));
    env.push_back(meta + "promotable=" + (promotable ? "true" : "false"));
    if (promotable) {
      for (const char* name : {"promoted_max=", "master_max="})
        env.push_back(meta + name + std::to_string(r.spec.promoted_max));
      for (const char* name : {"promoted_node_max=", "master_node_max="})
        env.push_back(meta + name + "1");
    }
  }
  if (r.kind == OpKind::kNotify) {
    for (auto& e : notify_environment(r.notify, r.vars.resource)) env.push_back(std::move(e));
  }
  for (const auto& [k, v] : a.params)
    env.push_back("OCF_RESKEY_" + k + "=" + expand_vars(v, r.vars));
  if (r.kind == OpKind::kReload && r.spec.agent.reload.action.empty())
    return complete(r.id, OpOutcome::kFailed, "the agent has no reload action");
  begin_command(op, {script, ocf_action(r)}, std::move(env));
}

void ProcessRunner::begin_systemd(Op& op) {
  const OpRequest& r = op.request;
  const std::string& unit = r.spec.agent.unit;
  if (!fs::exists(options_.systemd_marker)) {
    const std::string why = "systemd:" + unit +
                            " needs systemd as PID 1, and this machine runs without it (no " +
                            options_.systemd_marker + ")";
    if (r.kind == OpKind::kProbe) return complete(r.id, OpOutcome::kNotRunning, why);
    if (r.kind == OpKind::kStop) return complete(r.id, OpOutcome::kOk, why);
    return complete(r.id, OpOutcome::kFailed, why);
  }
  std::vector<std::string> argv = {options_.systemctl};
  switch (r.kind) {
    case OpKind::kStart:
      argv.insert(argv.end(), {"start", unit});
      break;
    case OpKind::kStop:
      argv.insert(argv.end(), {"stop", unit});
      break;
    case OpKind::kProbe:
    case OpKind::kMonitor:
      argv.insert(argv.end(), {"is-active", "--quiet", unit});
      break;
    case OpKind::kPromote:
    case OpKind::kDemote:
      return complete(r.id, OpOutcome::kFailed, "systemd units have no promoted role");
    case OpKind::kNotify:
      return complete(r.id, OpOutcome::kFailed, "systemd units have no notify action");
    case OpKind::kReload:
      return complete(r.id, OpOutcome::kFailed, "systemd units are restarted, not reloaded");
  }
  begin_command(op, std::move(argv), base_environment(r));
}

void ProcessRunner::on_probe_result(Op& op, const CheckResult& res) {
  const OpRequest& r = op.request;
  const int64_t now = clock_.mono_ms();
  switch (r.spec.agent.agent_class) {
    case AgentClass::kExec:
      if (r.kind == OpKind::kStart && !res.ok) {
        // Not serving yet: try again until the start timeout.
        if (now + kStartCheckRetryMs < op.deadline_ms) {
          op.retry_at_ms = now + kStartCheckRetryMs;
          return;
        }
        return complete(r.id, OpOutcome::kTimeout, "never passed its check: " + res.detail);
      }
      return complete(r.id, res.ok ? OpOutcome::kOk : OpOutcome::kFailed, res.detail);
    case AgentClass::kSystemd:
      if (r.kind == OpKind::kProbe || r.kind == OpKind::kMonitor)
        return complete(r.id, res.ok ? OpOutcome::kOk : OpOutcome::kNotRunning, res.detail);
      return complete(r.id, res.ok ? OpOutcome::kOk : OpOutcome::kFailed, res.detail);
    case AgentClass::kOcf: {
      if (!WIFEXITED(res.wait_status)) return complete(r.id, OpOutcome::kFailed, res.detail);
      const int code = WEXITSTATUS(res.wait_status);
      const std::string detail = "OCF exit " + std::to_string(code);
      if (code == 0) return complete(r.id, OpOutcome::kOk, detail);
      if (code == kOcfNotRunning)
        return complete(r.id, r.kind == OpKind::kStop ? OpOutcome::kOk : OpOutcome::kNotRunning,
                        detail);
      if (code == kOcfRunningPromoted) return complete(r.id, OpOutcome::kRunningPromoted, detail);
      if (code == kOcfNotInstalled && r.kind == OpKind::kProbe)
        return complete(r.id, OpOutcome::kNotRunning, detail + " (not installed)");
      return complete(r.id, OpOutcome::kFailed,
                      detail + (code == kOcfFailedPromoted ? " (failed while promoted)" : ""));
    }
    case AgentClass::kVip:
      return;  // its class runner runs no command
    case AgentClass::kProxy:
      return complete(r.id, res.ok ? OpOutcome::kOk : OpOutcome::kFailed, res.detail);
  }
}

void ProcessRunner::on_event(uint64_t tag, uint32_t events) {
  if (tag & kTagClass) {
    const uint64_t index = (tag >> kClassShift) & 0xF;
    if (index < classes_.size()) classes_[index].second->on_event(tag, events);
    return;
  }
  if (tag & kTagExec) {
    auto it = exec_by_tag_.find(tag);
    // A copy: on_exec_exit erases the entry it would otherwise refer to.
    if (it != exec_by_tag_.end()) on_exec_exit(std::string(it->second));
    return;
  }
  auto op = ops_.find(tag & ~kTagRunner);
  if (op == ops_.end()) return;
  auto done = op->second.probe->on_event(events);
  if (!done) return;
  if (op->second.timed_out)
    return complete(op->first, OpOutcome::kTimeout,
                    "killed after " + std::to_string(op->second.request.timeout_ms) + " ms");
  on_probe_result(op->second, *done);
}

void ProcessRunner::forget_exec(const std::string& resource) {
  auto it = exec_.find(resource);
  if (it == exec_.end()) return;
  loop_.remove(it->second.pidfd);
  ::close(it->second.pidfd);
  exec_by_tag_.erase(it->second.tag);
  exec_.erase(it);
  std::error_code ec;
  fs::remove(pid_file(resource), ec);
}

void ProcessRunner::on_exec_exit(const std::string& resource) {
  const ExecProcess e = exec_.at(resource);
  // Our child: reap it now (never leave a zombie that looks alive). An
  // adopted process is not our child; its exit is all we learn.
  const auto status = try_reap(e.pid);
  const std::string detail = status ? describe_wait_status(*status) : "exited";
  // What it left in its group must not outlive it.
  ::kill(-e.pid, SIGKILL);
  forget_exec(resource);
  if (e.stop_op != 0) {
    auto op = ops_.find(e.stop_op);
    const bool killed = op != ops_.end() && op->second.timed_out;
    return complete(e.stop_op, OpOutcome::kOk, killed ? "killed at the stop timeout" : detail);
  }
  std::vector<uint64_t> waiting;
  for (const auto& [id, op] : ops_) {
    if (op.request.vars.resource == resource) waiting.push_back(id);
  }
  for (uint64_t id : waiting)
    complete(id, OpOutcome::kFailed, "the process exited (" + detail + ")");
  spdlog::warn("agent: {} exited on its own ({})", resource, detail);
  completions_.push_back(OpCompletion{0, resource, OpKind::kMonitor, OpOutcome::kNotRunning,
                                      "the process exited (" + detail + ")"});
}

void ProcessRunner::tick() {
  for (auto& [agent_class, runner] : classes_) runner->tick();
  const int64_t now = clock_.mono_ms();
  std::vector<uint64_t> ids;
  for (const auto& [id, op] : ops_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = ops_.find(id);
    if (it == ops_.end()) continue;
    Op& op = it->second;
    const OpRequest& r = op.request;
    const bool exec_stop = r.spec.agent.agent_class == AgentClass::kExec && r.kind == OpKind::kStop;
    if (op.retry_at_ms != 0 && now >= op.retry_at_ms) {
      op.retry_at_ms = 0;
      if (!exec_.count(r.vars.resource)) {
        complete(id, OpOutcome::kFailed, "the process exited while starting");
        continue;
      }
      begin_exec_check(op);
      continue;
    }
    if (!op.timed_out && now >= op.deadline_ms) {
      op.timed_out = true;
      op.kill_at_ms = now + (exec_stop ? kKillWaitMs : kOperationTermGraceMs);
      if (exec_stop) {
        if (auto e = exec_.find(r.vars.resource); e != exec_.end()) {
          spdlog::warn("agent: {} did not stop within {} ms; SIGKILL", r.vars.resource,
                       r.timeout_ms);
          ::kill(-e->second.pid, SIGKILL);
          ::kill(e->second.pid, SIGKILL);
        }
      } else if (op.probe->pid() > 0) {
        spdlog::warn("agent: {} {} still running after {} ms; SIGTERM", r.vars.resource,
                     op_kind_name(r.kind), r.timeout_ms);
        op.probe->cancel(SIGTERM);
      } else {
        complete(id, OpOutcome::kTimeout,
                 "no answer within " + std::to_string(r.timeout_ms) + " ms");
      }
      continue;
    }
    if (op.timed_out && now >= op.kill_at_ms) {
      if (exec_stop) {
        complete(id, OpOutcome::kFailed, "still running after SIGKILL");
      } else {
        op.probe->cancel(SIGKILL);
        complete(id, OpOutcome::kTimeout,
                 "killed after " + std::to_string(r.timeout_ms) + " ms (SIGTERM, then SIGKILL)");
      }
    }
  }
}

int64_t ProcessRunner::next_deadline_ms() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (const auto& [agent_class, runner] : classes_)
    next = std::min(next, runner->next_deadline_ms());
  for (const auto& [id, op] : ops_) {
    next = std::min(next, op.timed_out ? op.kill_at_ms : op.deadline_ms);
    if (op.retry_at_ms != 0) next = std::min(next, op.retry_at_ms);
  }
  return next;
}

void ProcessRunner::complete(uint64_t id, OpOutcome outcome, std::string detail) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  const OpRequest& r = it->second.request;
  completions_.push_back(OpCompletion{id, r.vars.resource, r.kind, outcome, std::move(detail)});
  ops_.erase(it);
}

std::vector<OpCompletion> ProcessRunner::take_completions() {
  for (auto& [agent_class, runner] : classes_) runner->take_completions(completions_);
  std::vector<OpCompletion> out;
  out.swap(completions_);
  for (const OpCompletion& c : out) record_definition(c);
  return out;
}

}  // namespace bulwark
