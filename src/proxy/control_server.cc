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

#include "core/json_input.h"
#include "proxy_control/control_socket.h"

namespace bulwark::proxy {
namespace {

constexpr int kClientTimeoutMs = 5000;

}  // namespace

ControlServer::~ControlServer() { stop(); }

Status ControlServer::start(const std::string& path, Handler handler) {
  path_ = path;
  handler_ = std::move(handler);
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return make_error(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  // A socket file left by a proxy that died is in the way; a live proxy's
  // is not ours to take.
  const sockaddr_un addr = control_address(path);
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
  auto line = read_control_line(fd, kClientTimeoutMs);
  nlohmann::json answer;
  if (!line) {
    answer = {{"ok", false}, {"error", line.error().message}};
  } else {
    nlohmann::json request = parse_json_input(*line);
    if (request.is_discarded() || !request.is_object()) {
      answer = {{"ok", false}, {"error", "the request must be one JSON object on one line"}};
    } else {
      answer = handler_(request);
    }
  }
  write_control_line(fd, answer.dump());
}

}  // namespace bulwark::proxy
