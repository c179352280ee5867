#include "proxy/backend.h"

#include <algorithm>

namespace bulwark::proxy {

Server::Server(ServerConfig config, int workers, bool starts_up)
    : config_(std::move(config)),
      key_(hash_bytes(config_.name.data(), config_.name.size())),
      up_(starts_up),
      counters_(workers) {}

Backend::Backend(const BackendConfig& config, int workers)
    : name_(config.name), workers_(workers), counters_(workers) {
  apply(config);
}

std::shared_ptr<Server> Backend::make_server(const ServerConfig& config) const {
  // A new server starts up, as in HAProxy, so that a start or a reload does
  // not answer 503 until checks have run; the health checker checks it at
  // once and its first result alone decides, and a failed connect is
  // retried on another server meanwhile.
  return std::make_shared<Server>(config, workers_, true);
}

std::shared_ptr<const BackendConfig> Backend::settings() const {
  std::lock_guard lock(mu_);
  return settings_;
}

void Backend::set_slot_waker(std::function<void()> waker) {
  std::lock_guard lock(mu_);
  slot_waker_ = std::move(waker);
}

Backend::Choice Backend::pick(uint64_t client_hash, std::span<const Server* const> tried) {
  std::lock_guard lock(mu_);
  scratch_.resize(servers_.size());
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    const Server& s = *servers_[i];
    Candidate& c = scratch_[i];
    c.weight = s.config_.weight;
    c.active = s.active();
    c.maxconn = s.config_.maxconn;
    c.backup = s.config_.backup;
    c.usable = s.up() && !s.draining_ && !s.removed_;
    c.excluded = std::find(tried.begin(), tried.end(), &s) != tried.end();
    c.key = s.key_;
  }
  const Pick p = balancer_.pick(scratch_, settings_->balance, client_hash);
  Choice choice;
  choice.outcome = p.outcome;
  choice.settings = settings_;
  if (p.outcome == PickOutcome::kPicked) {
    choice.server = servers_[p.index];
    choice.server->active_.fetch_add(1, std::memory_order_relaxed);
  }
  return choice;
}

void Backend::release(Server& server) {
  server.active_.fetch_sub(1, std::memory_order_relaxed);
  if (queued_.load(std::memory_order_relaxed) > 0) {
    std::function<void()> waker;
    {
      std::lock_guard lock(mu_);
      waker = slot_waker_;
    }
    if (waker) waker();
  }
}

Backend::Verdict Backend::note_traffic_failure(Server& server) {
  const int errors = server.consecutive_errors_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::lock_guard lock(mu_);
  const int limit = settings_->error_limit;
  if (limit <= 0 || errors < limit || !server.up()) return Verdict::kCounted;
  server.consecutive_errors_.store(0, std::memory_order_relaxed);
  if (settings_->check.type != CheckType::kNone) {
    server.check_requested_.store(true, std::memory_order_release);
    return Verdict::kCheckRequested;
  }
  const bool other_usable = std::any_of(servers_.begin(), servers_.end(), [&](const auto& s) {
    return s.get() != &server && s->up() && !s->draining_ && !s->removed_ && s->config_.weight > 0;
  });
  if (!other_usable) return Verdict::kCounted;
  server.set_up(false);
  return Verdict::kMarkedDown;
}

bool Backend::try_enqueue() {
  const int max = settings()->queue_max;
  int current = queued_.load(std::memory_order_relaxed);
  while (current < max) {
    if (queued_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

std::vector<std::shared_ptr<Server>>::iterator Backend::find_locked(const std::string& name) {
  return std::find_if(servers_.begin(), servers_.end(),
                      [&](const auto& s) { return s->name() == name && !s->removed_; });
}

std::shared_ptr<Server> Backend::find(const std::string& name) const {
  std::lock_guard lock(mu_);
  for (const auto& s : servers_) {
    if (s->name() == name && !s->removed_) return s;
  }
  return nullptr;
}

Status Backend::add_server(const ServerConfig& server) {
  std::lock_guard lock(mu_);
  BackendConfig current = *settings_;
  current.servers.clear();
  for (const auto& s : servers_) current.servers.push_back(s->config_);
  if (auto st = validate_server(current, server); !st) return st;
  servers_.push_back(make_server(server));
  return Ok{};
}

Status Backend::remove_server(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = find_locked(name);
  if (it == servers_.end())
    return make_error(Errc::kNotFound, "backend '" + name_ + "' has no server '" + name + "'");
  // Established connections keep their shared_ptr and finish; the server
  // takes no new traffic from now on.
  (*it)->removed_ = true;
  servers_.erase(it);
  return Ok{};
}

Status Backend::set_draining(const std::string& name, bool draining) {
  std::lock_guard lock(mu_);
  auto it = find_locked(name);
  if (it == servers_.end())
    return make_error(Errc::kNotFound, "backend '" + name_ + "' has no server '" + name + "'");
  (*it)->draining_ = draining;
  return Ok{};
}

Status Backend::set_weight(const std::string& name, int weight) {
  if (weight < 0 || weight > 256) return make_error(Errc::kInvalid, "weight must be 0-256");
  std::lock_guard lock(mu_);
  auto it = find_locked(name);
  if (it == servers_.end())
    return make_error(Errc::kNotFound, "backend '" + name_ + "' has no server '" + name + "'");
  (*it)->config_.weight = weight;
  return Ok{};
}

void Backend::apply(const BackendConfig& config) {
  std::lock_guard lock(mu_);
  auto settings = std::make_shared<BackendConfig>(config);
  settings->servers.clear();
  settings_ = std::move(settings);
  std::vector<std::shared_ptr<Server>> next;
  for (const auto& sc : config.servers) {
    auto it = find_locked(sc.name);
    if (it != servers_.end() && (*it)->address() == sc.address) {
      (*it)->config_.weight = sc.weight;
      (*it)->config_.backup = sc.backup;
      (*it)->config_.maxconn = sc.maxconn;
      next.push_back(*it);
    } else {
      next.push_back(make_server(sc));
    }
  }
  for (auto& s : servers_) {
    if (std::find(next.begin(), next.end(), s) == next.end()) s->removed_ = true;
  }
  servers_ = std::move(next);
}

std::vector<ServerView> Backend::servers() const {
  std::lock_guard lock(mu_);
  std::vector<ServerView> out;
  for (const auto& s : servers_) out.push_back(ServerView{s, s->config_, s->draining_});
  return out;
}

}  // namespace bulwark::proxy
