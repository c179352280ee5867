#include "proxy/health_checker.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include "sys/process.h"
#include "sys/system_clock.h"

namespace bulwark::proxy {
namespace {

constexpr int64_t kRefreshMs = 100;        // how soon a new server is first checked
constexpr int64_t kPassiveRetryMs = 2000;  // unchecked servers: down this long, then tried

}  // namespace

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() {
  thread_ = std::thread([this] { run(); });
}

void HealthChecker::stop() {
  stop_.store(true);
  loop_.wake();
  if (thread_.joinable()) thread_.join();
}

void HealthChecker::set_backends(std::vector<std::shared_ptr<Backend>> backends) {
  {
    std::lock_guard lock(mu_);
    backends_ = std::move(backends);
  }
  loop_.wake();
}

void HealthChecker::run() {
  int64_t next_refresh = 0;
  while (!stop_.load()) {
    now_ms_ = mono_ms_now();
    if (now_ms_ >= next_refresh) {
      refresh();
      next_refresh = now_ms_ + kRefreshMs;
    }
    for (auto& [server, probe] : probes_) {
      Probe& p = *probe;
      if (p.server->take_check_request()) {
        // Traffic says the server fails: check now, and let one failed
        // check take it down.
        p.suspect = true;
        if (!p.in_flight) p.next_ms = now_ms_;
      }
      if (p.in_flight && now_ms_ >= p.deadline_ms) {
        finish(p, false, "timed out after " + std::to_string(p.check.timeout_ms) + " ms");
      } else if (!p.in_flight && now_ms_ >= p.next_ms) {
        begin(p);
      }
    }
    const auto events = loop_.wait(static_cast<int>(kRefreshMs / 2));
    now_ms_ = mono_ms_now();
    for (const epoll_event& ev : events) {
      auto it = by_tag_.find(ev.data.u64);
      if (it != by_tag_.end()) on_event(*it->second, ev.events);
    }
  }
  for (auto& [server, probe] : probes_) cleanup(*probe);
}

void HealthChecker::refresh() {
  std::vector<std::shared_ptr<Backend>> backends;
  {
    std::lock_guard lock(mu_);
    backends = backends_;
  }
  for (auto& [server, probe] : probes_) probe->seen = false;
  for (const auto& backend : backends) {
    const auto settings = backend->settings();
    for (const ServerView& view : backend->servers()) {
      auto& probe = probes_[view.server.get()];
      if (!probe) {
        probe = std::make_unique<Probe>();
        probe->backend = backend;
        probe->server = view.server;
        probe->next_ms = now_ms_;
        const uint64_t tag = next_tag_++;
        probe->probe = std::make_unique<CheckProbe>(loop_, tag);
        by_tag_[tag] = probe.get();
      }
      probe->seen = true;
      // A check in flight keeps the kind it started with: its descriptor
      // is a socket or a pidfd according to it.
      probe->pending = settings->check;
      if (!probe->in_flight) probe->check = probe->pending;
    }
  }
  for (auto it = probes_.begin(); it != probes_.end();) {
    if (!it->second->seen) {
      cleanup(*it->second);
      std::erase_if(by_tag_, [&](const auto& e) { return e.second == it->second.get(); });
      it = probes_.erase(it);
    } else {
      ++it;
    }
  }
}

void HealthChecker::begin(Probe& p) {
  p.check = p.pending;
  const CheckConfig& c = p.check;
  if (c.type == CheckType::kNone) {
    // Passive checking alone: give a server it marked down another chance.
    if (p.server->up()) {
      p.down_since_ms = 0;
    } else if (p.down_since_ms == 0) {
      p.down_since_ms = now_ms_;
    } else if (now_ms_ - p.down_since_ms >= kPassiveRetryMs) {
      p.server->note_traffic_success();
      p.server->set_up(true);
      p.down_since_ms = 0;
      spdlog::info("backend {} server {} given traffic again after {} ms", p.backend->name(),
                   p.server->name(), kPassiveRetryMs);
    }
    p.next_ms = now_ms_ + kRefreshMs;
    return;
  }
  p.in_flight = true;
  p.deadline_ms = now_ms_ + c.timeout_ms;
  if (auto done = p.probe->begin(target_of(p))) finish(p, done->ok, done->detail);
}

CheckTarget HealthChecker::target_of(const Probe& p) const {
  const CheckConfig& c = p.check;
  CheckTarget t;
  t.address = p.server->address();
  if (c.type == CheckType::kCommand) {
    t.kind = CheckKind::kCommand;
    t.command.argv = c.command;
    t.command.env = current_environment({"BULWARK_"});
    t.command.env.push_back("BULWARK_BACKEND=" + p.backend->name());
    t.command.env.push_back("BULWARK_SERVER_NAME=" + p.server->name());
    t.command.env.push_back("BULWARK_SERVER_ADDRESS=" + p.server->address().ip());
    t.command.env.push_back("BULWARK_SERVER_PORT=" + std::to_string(p.server->address().port()));
    t.command.death_signal = SIGKILL;
  } else if (c.type == CheckType::kHttp) {
    t.kind = CheckKind::kHttp;
    t.http_path = c.path;
    t.http_host = c.host;
    t.expect_status = c.expect_status;
  }
  return t;
}

void HealthChecker::on_event(Probe& p, uint32_t events) {
  if (auto done = p.probe->on_event(events)) finish(p, done->ok, done->detail);
}

void HealthChecker::cleanup(Probe& p) { p.probe->cancel(SIGKILL); }

void HealthChecker::finish(Probe& p, bool healthy, const std::string& why) {
  cleanup(p);
  p.in_flight = false;
  p.next_ms = now_ms_ + p.check.interval_ms;
  Server& s = *p.server;
  const bool was_up = s.up();
  // Marked down by traffic since the last check: the good results before
  // that do not count towards `rise`.
  if (!was_up && p.last_up) p.good = 0;
  if (healthy) {
    p.bad = 0;
    ++p.good;
    if (!was_up && (!p.settled || p.good >= p.check.rise)) {
      s.note_traffic_success();
      s.set_up(true);
      spdlog::info("backend {} server {} is UP ({})", p.backend->name(), s.name(), why);
    }
  } else {
    p.good = 0;
    ++p.bad;
    if (was_up && (!p.settled || p.suspect || p.bad >= p.check.fall)) {
      s.set_up(false);
      spdlog::warn("backend {} server {} is DOWN ({})", p.backend->name(), s.name(), why);
    }
  }
  p.settled = true;
  p.suspect = false;
  p.last_up = s.up();
}

}  // namespace bulwark::proxy
