// An IP address and port, parsed from "192.0.2.1:80" or "[2001:db8::1]:80".
// Only literals: the proxy never resolves names, so its behaviour cannot
// depend on a DNS server that is down during the outage it must survive.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "core/error.h"

namespace bulwark {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int port() const;
  // "192.0.2.1:80" or "[2001:db8::1]:80".
  std::string to_string() const;
  // The address without the port: "192.0.2.1", "2001:db8::1".
  std::string ip() const;
  bool operator==(const SocketAddress& other) const;
};

Result<SocketAddress> parse_socket_address(const std::string& text);

}  // namespace bulwark
