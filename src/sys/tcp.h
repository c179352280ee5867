// TCP sockets for the data plane: listening with SO_REUSEPORT (one socket
// per worker thread, so the kernel spreads connections without a shared
// accept lock) and non-blocking connects. All descriptors are non-blocking
// and close-on-exec.
#pragma once

#include "core/error.h"
#include "sys/socket_address.h"

namespace bulwark {

struct ListenOptions {
  int backlog = 4096;
  bool reuse_port = true;
  bool freebind = false;  // bind an address this host does not hold (yet)
};
Result<int> listen_tcp(const SocketAddress& address, const ListenOptions& options);

// Fails when another socket listens on `address`, even one with
// SO_REUSEPORT (which listen_tcp uses and would silently share the port).
Status ensure_port_free(const SocketAddress& address, bool freebind);

struct Connecting {
  int fd = -1;
  bool in_progress = false;  // wait for writability, then read SO_ERROR
};
Result<Connecting> connect_tcp(const SocketAddress& address);

// Accepts one connection (non-blocking, close-on-exec, TCP_NODELAY); -1 with
// errno set when none is pending or on error.
int accept_tcp(int listen_fd, SocketAddress* peer);
// The pending error of a socket (SO_ERROR), 0 if none.
int socket_error(int fd);
void close_fd(int fd);

// Raises the open-file limit to the hard limit (and, for root, the hard
// limit to `wanted`); returns the soft limit in force.
long raise_fd_limit(long wanted);

}  // namespace bulwark
