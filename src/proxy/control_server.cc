#include "proxy/control_server.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bulwark::proxy {
namespace {

constexpr std::size_t kRequestBytesMax = 65536;
constexpr int kClientTimeoutMs = 5000;

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

// Reads one line (up to the newline or end of stream) with a deadline.
Result<std::string> read_line(int fd, int timeout_ms) {
  std::string line;
  char buf[4096];
  while (line.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0)
      return make_error(Errc::kTimeout, "control socket: timed out");
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
    if (line.size() > kRequestBytesMax)
      return make_error(Errc::kInvalid, "control request too long");
  }
  if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
  return line;
}

bool write_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

ControlServer::~ControlServer() { stop(); }

Status ControlServer::start(const std::string& path, Handler handler) {
  path_ = path;
  handler_ = std::move(handler);
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return make_error(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  // A socket file left by a proxy that died is in the way; a live proxy's
  // is not ours to take.
  const sockaddr_un addr = unix_address(path);
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    const bool live = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(probe);
    if (live)
      return make_error(Errc::kConflict,
                        "control socket " + path + " is in use by another process");
  }
  ::unlink(path.c_str());
  const mode_t old = ::umask(0077);
  const bool bound = ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::umask(old);
  if (!bound || ::listen(listen_fd_, 16) != 0)
    return make_error(Errc::kIo, "cannot listen on " + path + ": " + std::strerror(errno));
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { run(); });
  return Ok{};
}

void ControlServer::stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
    listen_fd_ = -1;
  }
  if (stop_fd_ >= 0) {
    ::close(stop_fd_);
    stop_fd_ = -1;
  }
}

void ControlServer::run() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve(fd);
    ::close(fd);
  }
}

void ControlServer::serve(int fd) {
  auto line = read_line(fd, kClientTimeoutMs);
  nlohmann::json answer;
  if (!line) {
    answer = {{"ok", false}, {"error", line.error().message}};
  } else {
    nlohmann::json request = nlohmann::json::parse(*line, nullptr, false);
    if (request.is_discarded() || !request.is_object()) {
      answer = {{"ok", false}, {"error", "the request must be one JSON object on one line"}};
    } else {
      answer = handler_(request);
    }
  }
  write_all(fd, answer.dump() + "\n");
}

Result<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  const sockaddr_un addr = unix_address(path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return make_error(Errc::kUnavailable, "cannot connect to " + path + ": " + why);
  }
  if (!write_all(fd, request.dump() + "\n")) {
    ::close(fd);
    return make_error(Errc::kIo, "cannot send to " + path);
  }
  auto line = read_line(fd, 30000);
  ::close(fd);
  if (!line) return line.error();
  nlohmann::json answer = nlohmann::json::parse(*line, nullptr, false);
  if (answer.is_discarded()) return make_error(Errc::kIo, "bad answer from " + path);
  return answer;
}

}  // namespace bulwark::proxy
