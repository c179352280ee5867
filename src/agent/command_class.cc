#include "agent/command_class.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "sys/socket_address.h"

namespace bulwark {
namespace {

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

CommandClass::CommandClass(const ClassContext& context) : context_(context) {}

void CommandClass::begin(const OpRequest& request) {
  BW_ASSERT(request.id != 0 && request.id < kOwnTag && !ops_.count(request.id),
            "an operation id is new and fits a tag");
  Op& op = ops_[request.id];
  op.request = request;
  op.deadline_ms = context_.clock.mono_ms() + request.timeout_ms;
  op.probe = std::make_unique<CheckProbe>(context_.loop, context_.tag_base | request.id);
  start(op);
}

void CommandClass::cancel(uint64_t id) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  it->second.probe->cancel(SIGKILL);
  on_cancel(it->second);
  ops_.erase(it);
}

void CommandClass::on_event(uint64_t tag, uint32_t events) {
  auto op = ops_.find(tag & (kOwnTag - 1));
  if (op == ops_.end()) return;
  auto done = op->second.probe->on_event(events);
  if (!done) return;
  if (op->second.timed_out)
    return complete(op->first, OpOutcome::kTimeout,
                    "killed after " + std::to_string(op->second.request.timeout_ms) + " ms");
  on_result(op->second, *done);
}

void CommandClass::tick() {
  const int64_t now = context_.clock.mono_ms();
  std::vector<uint64_t> ids;
  for (const auto& [id, op] : ops_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = ops_.find(id);
    if (it == ops_.end()) continue;
    Op& op = it->second;
    const OpRequest& r = op.request;
    if (op.retry_at_ms != 0 && now >= op.retry_at_ms) {
      op.retry_at_ms = 0;
      on_retry(op);
      continue;
    }
    if (!op.timed_out && now >= op.deadline_ms) {
      op.timed_out = true;
      if (on_deadline(op)) continue;
      op.kill_at_ms = now + kOperationTermGraceMs;
      if (op.probe->pid() > 0) {
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
      if (on_kill_deadline(op)) continue;
      op.probe->cancel(SIGKILL);
      complete(id, OpOutcome::kTimeout,
               "killed after " + std::to_string(r.timeout_ms) + " ms (SIGTERM, then SIGKILL)");
    }
  }
}

int64_t CommandClass::next_deadline_ms() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (const auto& [id, op] : ops_) {
    next = std::min(next, op.timed_out ? op.kill_at_ms : op.deadline_ms);
    if (op.retry_at_ms != 0) next = std::min(next, op.retry_at_ms);
  }
  return next;
}

void CommandClass::take_completions(std::vector<OpCompletion>& out) {
  for (auto& c : completions_) out.push_back(std::move(c));
  completions_.clear();
}

bool CommandClass::begin_command(Op& op, std::vector<std::string> argv,
                                 std::vector<std::string> env, bool keep_leftovers) {
  CheckTarget t;
  t.kind = CheckKind::kCommand;
  t.keep_leftovers = keep_leftovers;
  t.command.argv = std::move(argv);
  t.command.env = std::move(env);
  t.command.log_file = log_file(op.request.vars.resource);
  if (auto done = op.probe->begin(t)) {
    on_result(op, *done);
    return false;
  }
  return true;
}

void CommandClass::begin_check(Op& op) {
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
  if (auto done = op.probe->begin(*target)) on_result(op, *done);
}

void CommandClass::complete(uint64_t id, OpOutcome outcome, std::string detail) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  const OpRequest& r = it->second.request;
  completions_.push_back(OpCompletion{id, r.vars.resource, r.kind, outcome, std::move(detail)});
  ops_.erase(it);
}

std::vector<std::string> CommandClass::base_environment(const OpRequest& r) const {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
      "HOME=/"};
  env.insert(env.end(), context_.inherited_env.begin(), context_.inherited_env.end());
  for (auto& v : vars_environment(r.vars)) env.push_back(std::move(v));
  return env;
}

std::string CommandClass::log_file(const std::string& resource) const {
  return context_.log_dir + "/" + resource + ".log";
}

}  // namespace bulwark
