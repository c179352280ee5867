#include "sys/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bulwark {
namespace {

Error os_error(const std::string& what) {
  return make_error(Errc::kIo, what + ": " + std::strerror(errno));
}

void set_nodelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Result<int> listen_tcp(const SocketAddress& address, const ListenOptions& options) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return os_error("socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (options.reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (options.freebind) {
    if (address.family() == AF_INET6) {
      setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
    } else {
      setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
    }
  }
  if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, address.get(), address.length) != 0 || ::listen(fd, options.backlog) != 0) {
    Error e = os_error("cannot listen on " + address.to_string());
    ::close(fd);
    return e;
  }
  return fd;
}

Status ensure_port_free(const SocketAddress& address, bool freebind) {
  auto probe = listen_tcp(address, ListenOptions{1, false, freebind});
  if (!probe) return probe.error();
  ::close(*probe);
  return Ok{};
}

Result<Connecting> connect_tcp(const SocketAddress& address) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return os_error("socket");
  set_nodelay(fd);
  Connecting c{fd, false};
  if (::connect(fd, address.get(), address.length) != 0) {
    if (errno != EINPROGRESS) {
      Error e = os_error("connect to " + address.to_string());
      ::close(fd);
      return e;
    }
    c.in_progress = true;
  }
  return c;
}

int accept_tcp(int listen_fd, SocketAddress* peer) {
  SocketAddress addr;
  addr.length = sizeof(addr.storage);
  const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr.storage), &addr.length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return -1;
  set_nodelay(fd);
  if (peer) *peer = addr;
  return fd;
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

long raise_fd_limit(long wanted) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  if (lim.rlim_max != RLIM_INFINITY && static_cast<long>(lim.rlim_max) < wanted) {
    rlimit raised = lim;
    raised.rlim_max = static_cast<rlim_t>(wanted);
    raised.rlim_cur = static_cast<rlim_t>(wanted);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return wanted;
  }
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return static_cast<long>(lim.rlim_cur);
}

}  // namespace bulwark
