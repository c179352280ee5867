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

Result<int64_t> ProcessFenceLauncher::launch(const std::vector<std::string>& argv,
                                             const std::string& options) {
  SpawnOptions o;
  o.argv = argv;
  o.env = current_environment({});
  o.stdin_data = options;
  o.new_process_group = true;
  auto pid = spawn_process(o);
  if (!pid) return pid.error();
  return static_cast<int64_t>(*pid);
}

std::optional<int> ProcessFenceLauncher::reap(int64_t call) {
  return try_reap(static_cast<pid_t>(call));
}

void ProcessFenceLauncher::kill(int64_t call) {
  const auto pid = static_cast<pid_t>(call);
  ::kill(-pid, SIGKILL);  // the agent and whatever it started
  terminate_process(pid, 0);
}

Fencer::Fencer(const Clock& clock, FenceLauncher& launcher, FencingConfig config,
               std::map<std::string, std::map<std::string, std::string>> node_params)
    : clock_(clock),
      launcher_(launcher),
      config_(std::move(config)),
      node_params_(std::move(node_params)) {}

Fencer::~Fencer() {
  for (auto& [node, call] : calls_) {
    if (call.call > 0) launcher_.kill(call.call);
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
  if (call.call > 0 || (call.retry_at_ms != 0 && clock_.mono_ms() < call.retry_at_ms)) return;
  call.incarnation = incarnation;
  call.reason = reason;
  start(node, call);
}

void Fencer::start(const std::string& node, Call& call) {
  auto launched = launcher_.launch(config_.command, options_for(node));
  call.retry_at_ms = 0;
  if (!launched) {
    ++call.failures;
    call.retry_at_ms = clock_.mono_ms() + kRetryFirstMs;
    spdlog::error("fencing: cannot run the fence agent for {}: {}", node, launched.error().message);
    return;
  }
  call.call = *launched;
  call.deadline_ms = clock_.mono_ms() + config_.timeout_ms;
  spdlog::warn("fencing: {}: {}; fencing it ({})", node,
               call.reason.empty() ? "it is lost and may run exclusive resources" : call.reason,
               config_.command[0]);
}

void Fencer::poll() {
  const int64_t now = clock_.mono_ms();
  for (auto& [node, call] : calls_) {
    if (call.call <= 0) continue;
    std::optional<int> status = launcher_.reap(call.call);
    std::string why;
    if (!status && now >= call.deadline_ms) {
      launcher_.kill(call.call);
      why = "no answer within " + std::to_string(config_.timeout_ms) + " ms";
    } else if (!status) {
      continue;
    } else if (*status == 0) {
      call.call = 0;
      call.failures = 0;
      confirmed_[node] = call.incarnation;
      spdlog::warn("fencing: {} is fenced (action {})", node, config_.action);
      continue;
    } else {
      why = describe_wait_status(*status);
    }
    call.call = 0;
    ++call.failures;
    const int64_t pause = std::min(kRetryMaxMs, kRetryFirstMs << std::min(call.failures - 1, 5));
    call.retry_at_ms = now + pause;
    spdlog::error("fencing {} failed ({}); its exclusive resources stay put; retrying in {} ms",
                  node, why, pause);
  }
}

bool Fencer::in_flight() const {
  return std::any_of(calls_.begin(), calls_.end(), [](const auto& c) { return c.second.call > 0; });
}

std::set<std::string> Fencer::in_flight_nodes() const {
  std::set<std::string> out;
  for (const auto& [node, call] : calls_) {
    if (call.call > 0) out.insert(node);
  }
  return out;
}

void Fencer::forget_if_new_life(const std::string& node, uint64_t incarnation) {
  auto c = confirmed_.find(node);
  if (c == confirmed_.end() || c->second == incarnation) return;
  confirmed_.erase(c);
  auto it = calls_.find(node);
  if (it != calls_.end() && it->second.call <= 0) calls_.erase(it);
}

}  // namespace bulwark
