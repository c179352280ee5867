// A bound UDP socket with a self-pipe so another thread can wake a waiter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace bulwark {

class UdpSocket {
 public:
  static Result<UdpSocket> bind(const std::string& address, int port);
  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&&) = delete;
  UdpSocket(const UdpSocket&) = delete;
  ~UdpSocket();

  // Best effort: a full buffer or unreachable peer just drops the datagram,
  // as the network would.
  void send_to(const std::string& address, int port, const std::vector<uint8_t>& bytes);
  // Waits up to timeout_ms for a datagram or wake(); nullopt on timeout/wake.
  std::optional<std::vector<uint8_t>> receive(int timeout_ms);
  void wake();

 private:
  UdpSocket(int fd, int wake_read, int wake_write)
      : fd_(fd), wake_read_(wake_read), wake_write_(wake_write) {}
  int fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
};

}  // namespace bulwark
