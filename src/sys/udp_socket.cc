#include "sys/udp_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bulwark {
namespace {

bool make_sockaddr(const std::string& address, int port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace

Result<UdpSocket> UdpSocket::bind(const std::string& address, int port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!make_sockaddr(address, port, ss, len))
    return make_error(Errc::kInvalid, "not an IP address: " + address);
  const int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_error(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(Errc::kIo, "cannot bind heartbeat socket " + address + ":" +
                                     std::to_string(port) + ": " + std::strerror(err));
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd);
    return make_error(Errc::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  return UdpSocket(fd, pipe_fds[0], pipe_fds[1]);
}

UdpSocket::UdpSocket(UdpSocket&& other) noexcept
    : fd_(other.fd_), wake_read_(other.wake_read_), wake_write_(other.wake_write_) {
  other.fd_ = other.wake_read_ = other.wake_write_ = -1;
}

UdpSocket::~UdpSocket() {
  for (int fd : {fd_, wake_read_, wake_write_}) {
    if (fd >= 0) ::close(fd);
  }
}

void UdpSocket::send_to(const std::string& address, int port, const std::vector<uint8_t>& bytes) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!make_sockaddr(address, port, ss, len)) return;
  (void)::sendto(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss),
                 len);
}

std::optional<std::vector<uint8_t>> UdpSocket::receive(int timeout_ms) {
  std::vector<uint8_t> buf(2048);
  // Drain what is already queued before waiting.
  ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
  if (n >= 0) {
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
  const int rc = ::poll(fds, 2, timeout_ms < 0 ? 0 : timeout_ms);
  if (rc <= 0) return std::nullopt;
  if (fds[1].revents & POLLIN) {
    char drain[64];
    while (::read(wake_read_, drain, sizeof drain) > 0) {
    }
  }
  if (!(fds[0].revents & POLLIN)) return std::nullopt;
  n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

void UdpSocket::wake() {
  const char c = 1;
  (void)::write(wake_write_, &c, 1);
}

}  // namespace bulwark
