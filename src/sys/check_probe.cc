#include "sys/check_probe.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "sys/tcp.h"

namespace bulwark {
namespace {

constexpr std::size_t kResponseMax = 1024;  // enough for a status line

bool status_ok(const CheckTarget& t, int status) {
  if (t.expect_status != 0) return status == t.expect_status;
  return status >= 200 && status < 400;
}

}  // namespace

int parse_http_status(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 7, "HTTP/1.") != 0 || response[8] != ' ')
    return 0;
  int status = 0;
  const auto [end, ec] = std::from_chars(response.data() + 9, response.data() + 12, status);
  if (ec != std::errc() || end != response.data() + 12) return 0;
  return status;
}

std::optional<CheckResult> CheckProbe::begin(const CheckTarget& target) {
  cancel(SIGKILL);
  target_ = target;
  connected_ = false;
  response_.clear();
  if (target.kind == CheckKind::kCommand) {
    SpawnOptions o = target.command;
    // Its own process group: a timeout ends the command and its children.
    o.new_process_group = true;
    auto pid = spawn_process(o);
    if (!pid) return finish(false, pid.error().message);
    pid_ = *pid;
    fd_ = open_pidfd(pid_);
    if (fd_ < 0) {
      ::kill(-pid_, SIGKILL);
      return finish(false, std::string("pidfd_open: ") + std::strerror(errno));
    }
    if (auto st = loop_.add(fd_, EPOLLIN, tag_); !st) {
      ::kill(-pid_, SIGKILL);
      return finish(false, st.error().message);
    }
    return std::nullopt;
  }
  auto connecting = connect_tcp(target.address);
  if (!connecting) return finish(false, connecting.error().message);
  fd_ = connecting->fd;
  if (target.kind == CheckKind::kHttp) {
    const std::string host =
        target.http_host.empty() ? target.address.to_string() : target.http_host;
    request_ = "GET " + target.http_path + " HTTP/1.1\r\nHost: " + host +
               "\r\nUser-Agent: bulwark-check\r\nConnection: close\r\n\r\n";
  }
  if (auto st = loop_.add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP, tag_); !st)
    return finish(false, st.error().message);
  return std::nullopt;
}

std::optional<CheckResult> CheckProbe::on_event(uint32_t events) {
  if (fd_ < 0) return std::nullopt;
  if (target_.kind == CheckKind::kCommand) {
    int status = 0;
    if (pid_ <= 0) return std::nullopt;
    const auto reaped = try_reap(pid_);
    if (!reaped) return std::nullopt;
    status = *reaped;
    // Children it left in its group end with it, unless they are meant to
    // outlive it (keep_leftovers).
    if (!target_.keep_leftovers) ::kill(-pid_, SIGKILL);
    pid_ = -1;
    return finish(WIFEXITED(status) && WEXITSTATUS(status) == 0, describe_wait_status(status),
                  status);
  }
  if (!connected_) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return std::nullopt;
    const int err = socket_error(fd_);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP)))
      return finish(false, std::string("connect: ") + std::strerror(err ? err : ECONNREFUSED));
    connected_ = true;
    if (target_.kind == CheckKind::kTcp) return finish(true, "connected");
    // The request is tiny: one send on a fresh connection takes it whole.
    if (::send(fd_, request_.data(), request_.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request_.size()))
      return finish(false, "cannot send the check request");
    if (auto st = loop_.modify(fd_, EPOLLIN | EPOLLRDHUP, tag_); !st)
      return finish(false, st.error().message);
    return std::nullopt;
  }
  char buf[512];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;
  if (n > 0 && response_.size() < kResponseMax) response_.append(buf, static_cast<std::size_t>(n));
  const int status = parse_http_status(response_);
  if (status != 0) return finish(status_ok(target_, status), "HTTP " + std::to_string(status));
  if (n <= 0 || response_.size() >= kResponseMax || response_.find('\n') != std::string::npos)
    return finish(false, "no valid HTTP status line");
  return std::nullopt;
}

void CheckProbe::cancel(int signal) {
  if (pid_ > 0) {
    ::kill(-pid_, signal);
    // Ended at its deadline: what it leaves running ends with it, whatever
    // keep_leftovers said (a child that ignores SIGTERM too).
    target_.keep_leftovers = false;
    if (signal != SIGKILL) return;  // its exit arrives through the pidfd
    int status = 0;
    ::waitpid(pid_, &status, 0);
    try_reap(pid_);  // forgets it as an owned child
    pid_ = -1;
  }
  close_fd();
}

void CheckProbe::close_fd() {
  if (fd_ < 0) return;
  loop_.remove(fd_);
  ::close(fd_);
  fd_ = -1;
}

std::optional<CheckResult> CheckProbe::finish(bool ok, std::string detail, int wait_status) {
  close_fd();
  return CheckResult{ok, wait_status, std::move(detail)};
}

}  // namespace bulwark
