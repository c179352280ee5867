#include "coordinator/fencer.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "sys/process.h"

namespace bulwark {
namespace {

// The pause after a failed call doubles from the first to the last.
constexpr int64_t kRetryFirstMs = 500;
constexpr int64_t kRetryMaxMs = 10000;

}  // namespace

Fencer::Fencer(const Clock& clock, FencingConfig config,
               std::map<std::string, std::map<std::string, std::string>> node_params)
    : clock_(clock), config_(std::move(config)), node_params_(std::move(node_params)) {}

Fencer::~Fencer() {
  for (auto& [node, call] : calls_) {
    if (call.pid <= 0) continue;
    ::kill(-call.pid, SIGKILL);  // the agent and whatever it started
    terminate_process(call.pid, 0);
  }
}

std::string Fencer::options_for(const std::string& node) const {
  // plug and port are one option under two names (fence-agents read both
  // into --plug, the last line winning): only `plug` is sent, set from
  // either name; nodename is what agents that fence by cluster node name use.
  std::map<std::string, std::string> opts = {
      {"action", config_.action}, {"plug", node}, {"nodename", node}};
  const auto apply = [&](const std::map<std::string, std::string>& params) {
    for (const auto& [k, v] : params) opts[k == "port" ? "plug" : k] = v;
  };
  apply(config_.params);
  if (auto it = node_params_.find(node); it != node_params_.end()) apply(it->second);
  std::string out;
  for (const auto& [k, v] : opts) out += k + "=" + v + "\n";
  return out;
}

void Fencer::request(const std::string& node, uint64_t incarnation, const std::string& reason) {
  if (!configured()) return;
  if (auto c = confirmed_.find(node); c != confirmed_.end() && c->second == incarnation) return;
  Call& call = calls_[node];
  if (call.pid > 0 || (call.retry_at_ms != 0 && clock_.mono_ms() < call.retry_at_ms)) return;
  call.incarnation = incarnation;
  call.reason = reason;
  start(node, call);
}

void Fencer::start(const std::string& node, Call& call) {
  SpawnOptions o;
  o.argv = config_.command;
  o.env = current_environment({});
  o.stdin_data = options_for(node);
  o.new_process_group = true;
  auto pid = spawn_process(o);
  call.retry_at_ms = 0;
  if (!pid) {
    ++call.failures;
    call.retry_at_ms = clock_.mono_ms() + kRetryFirstMs;
    spdlog::error("fencing: cannot run the fence agent for {}: {}", node, pid.error().message);
    return;
  }
  call.pid = *pid;
  call.deadline_ms = clock_.mono_ms() + config_.timeout_ms;
  spdlog::warn("fencing: {}: {}; fencing it ({})", node,
               call.reason.empty() ? "it is lost and may run exclusive resources" : call.reason,
               config_.command[0]);
}

void Fencer::poll() {
  const int64_t now = clock_.mono_ms();
  for (auto& [node, call] : calls_) {
    if (call.pid <= 0) continue;
    std::optional<int> status = try_reap(call.pid);
    std::string why;
    if (!status && now >= call.deadline_ms) {
      ::kill(-call.pid, SIGKILL);
      terminate_process(call.pid, 0);
      why = "no answer within " + std::to_string(config_.timeout_ms) + " ms";
    } else if (!status) {
      continue;
    } else if (*status == 0) {
      call.pid = -1;
      call.failures = 0;
      confirmed_[node] = call.incarnation;
      spdlog::warn("fencing: {} is fenced (action {})", node, config_.action);
      continue;
    } else {
      why = describe_wait_status(*status);
    }
    call.pid = -1;
    ++call.failures;
    const int64_t pause = std::min(kRetryMaxMs, kRetryFirstMs << std::min(call.failures - 1, 5));
    call.retry_at_ms = now + pause;
    spdlog::error("fencing {} failed ({}); its exclusive resources stay put; retrying in {} ms",
                  node, why, pause);
  }
}

bool Fencer::in_flight() const {
  return std::any_of(calls_.begin(), calls_.end(), [](const auto& c) { return c.second.pid > 0; });
}

void Fencer::forget_if_new_life(const std::string& node, uint64_t incarnation) {
  auto c = confirmed_.find(node);
  if (c == confirmed_.end() || c->second == incarnation) return;
  confirmed_.erase(c);
  auto it = calls_.find(node);
  if (it != calls_.end() && it->second.pid <= 0) calls_.erase(it);
}

}  // namespace bulwark
