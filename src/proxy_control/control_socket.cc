#include "proxy_control/control_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/json_input.h"

namespace bulwark::proxy {
namespace {

// A proxy answers at once, but a reload may parse a large file first.
constexpr int kAnswerTimeoutMs = 30000;

}  // namespace

sockaddr_un control_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

Result<std::string> read_control_line(int fd, int timeout_ms) {
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
    if (line.size() > kControlLineMax)
      return make_error(Errc::kInvalid, "control request too long");
  }
  if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
  return line;
}

bool write_control_line(int fd, const std::string& line) {
  const std::string data = line + "\n";
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

Result<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  const sockaddr_un addr = control_address(path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return make_error(Errc::kUnavailable, "cannot connect to " + path + ": " + why);
  }
  if (!write_control_line(fd, request.dump())) {
    ::close(fd);
    return make_error(Errc::kIo, "cannot send to " + path);
  }
  auto line = read_control_line(fd, kAnswerTimeoutMs);
  ::close(fd);
  if (!line) return line.error();
  nlohmann::json answer = parse_json_input(*line);
  if (answer.is_discarded()) return make_error(Errc::kIo, "bad answer from " + path);
  return answer;
}

}  // namespace bulwark::proxy
