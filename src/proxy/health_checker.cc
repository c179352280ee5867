#include "proxy/health_checker.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "sys/process.h"
#include "sys/system_clock.h"
#include "sys/tcp.h"

namespace bulwark::proxy {
namespace {

constexpr int64_t kRefreshMs = 100;         // how soon a new server is first checked
constexpr int64_t kPassiveRetryMs = 2000;   // unchecked servers: down this long, then tried
constexpr std::size_t kResponseMax = 1024;  // enough for a status line

bool status_ok(const CheckConfig& check, int status) {
  if (check.expect_status != 0) return status == check.expect_status;
  return status >= 200 && status < 400;
}

// "HTTP/1.1 200 OK\r\n..." -> 200, or 0 when the line is not there yet or bad.
int parse_status(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 7, "HTTP/1.") != 0 || response[8] != ' ')
    return 0;
  int status = 0;
  const auto [end, ec] = std::from_chars(response.data() + 9, response.data() + 12, status);
  if (ec != std::errc() || end != response.data() + 12) return 0;
  return status;
}

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
      auto it = by_fd_.find(static_cast<int>(ev.data.u64));
      if (it != by_fd_.end()) on_event(*it->second, ev.events);
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
  p.connected = false;
  p.response.clear();
  p.deadline_ms = now_ms_ + c.timeout_ms;
  if (c.type == CheckType::kCommand) {
    SpawnOptions o;
    o.argv = c.command;
    o.env = current_environment({"BULWARK_"});
    o.env.push_back("BULWARK_BACKEND=" + p.backend->name());
    o.env.push_back("BULWARK_SERVER_NAME=" + p.server->name());
    o.env.push_back("BULWARK_SERVER_ADDRESS=" + p.server->address().ip());
    o.env.push_back("BULWARK_SERVER_PORT=" + std::to_string(p.server->address().port()));
    o.death_signal = SIGKILL;
    auto pid = spawn_process(o);
    if (!pid) {
      finish(p, false, pid.error().message);
      return;
    }
    p.pid = *pid;
    p.fd = open_pidfd(p.pid);
    if (p.fd < 0) {
      finish(p, false, "pidfd_open failed");
      return;
    }
    if (loop_.add(p.fd, EPOLLIN, static_cast<uint64_t>(p.fd))) by_fd_[p.fd] = &p;
    return;
  }
  auto connecting = connect_tcp(p.server->address());
  if (!connecting) {
    finish(p, false, connecting.error().message);
    return;
  }
  p.fd = connecting->fd;
  if (c.type == CheckType::kHttp) {
    const std::string host = c.host.empty() ? p.server->address().to_string() : c.host;
    p.request = "GET " + c.path + " HTTP/1.1\r\nHost: " + host +
                "\r\nUser-Agent: bulwark-proxy-check\r\nConnection: close\r\n\r\n";
  }
  if (loop_.add(p.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, static_cast<uint64_t>(p.fd)))
    by_fd_[p.fd] = &p;
}

void HealthChecker::on_event(Probe& p, uint32_t events) {
  const CheckConfig& c = p.check;
  if (c.type == CheckType::kCommand) {
    int status = 0;
    if (p.pid <= 0 || ::waitpid(p.pid, &status, WNOHANG) != p.pid) return;
    p.pid = -1;
    const bool healthy = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    finish(p, healthy, describe_wait_status(status));
    return;
  }
  if (!p.connected) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    const int err = socket_error(p.fd);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      finish(p, false, std::string("connect: ") + std::strerror(err ? err : ECONNREFUSED));
      return;
    }
    p.connected = true;
    if (c.type == CheckType::kTcp) {
      finish(p, true, "connected");
      return;
    }
    // The request is tiny: one send on a fresh connection takes it whole.
    if (::send(p.fd, p.request.data(), p.request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(p.request.size())) {
      finish(p, false, "cannot send the check request");
      return;
    }
    if (!loop_.modify(p.fd, EPOLLIN | EPOLLRDHUP, static_cast<uint64_t>(p.fd)))
      finish(p, false, "epoll_ctl failed");
    return;
  }
  char buf[512];
  const ssize_t n = ::recv(p.fd, buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0 && p.response.size() < kResponseMax)
    p.response.append(buf, static_cast<std::size_t>(n));
  const int status = parse_status(p.response);
  if (status != 0) {
    finish(p, status_ok(c, status), "HTTP " + std::to_string(status));
  } else if (n <= 0 || p.response.size() >= kResponseMax ||
             p.response.find('\n') != std::string::npos) {
    finish(p, false, "no valid HTTP status line");
  }
}

void HealthChecker::cleanup(Probe& p) {
  if (p.fd >= 0) {
    by_fd_.erase(p.fd);
    loop_.remove(p.fd);
    close_fd(p.fd);
    p.fd = -1;
  }
  if (p.pid > 0) {
    ::kill(p.pid, SIGKILL);
    ::waitpid(p.pid, nullptr, 0);
    p.pid = -1;
  }
}

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
