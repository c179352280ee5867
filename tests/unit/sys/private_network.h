// A private network for tests that need root: network namespaces belong to
// threads in Linux, so in_private_network() runs a body on a thread of its
// own that first unshares its network namespace and then makes a veth pair
// a <-> b there (with the `ip` command, whose process inherits the thread's
// namespace). The namespace, its links and addresses vanish when the thread
// ends; nothing is named or left in the caller's namespace. Tests assign
// only documentation addresses (192.0.2.0/24, 2001:db8::/32).
#pragma once

#include <gtest/gtest.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sys/netlink.h"
#include "sys/process.h"
#include "sys/system_clock.h"

namespace bulwark::nettest {

using Frame = std::vector<uint8_t>;

inline std::string ip_binary() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return "";
}

// Runs `ip ARGS` in the calling thread's network namespace: "" or why it failed.
inline std::string run_ip(const std::vector<std::string>& args) {
  SpawnOptions options;
  options.argv = {ip_binary()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
  const auto out = run_command(options, 5000);
  std::string line = "ip";
  for (const auto& a : args) line += " " + a;
  if (!out) return line + ": " + out.error().message;
  if (out->wait_status != 0)
    return line + ": " + describe_wait_status(out->wait_status) + ": " + out->output;
  return "";
}

// What `ip ARGS` prints, in the calling thread's namespace.
inline std::string ip_output(const std::vector<std::string>& args) {
  SpawnOptions options;
  options.argv = {ip_binary()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
  const auto out = run_command(options, 5000);
  return out.ok() ? out->output : out.error().message;
}

inline std::string netns_of(const std::string& task_path) {
  std::error_code ec;
  return std::filesystem::read_symlink(task_path + "/ns/net", ec).string();
}

inline bool may_use_private_networks(std::string& why_not) {
  if (::geteuid() != 0) {
    why_not = "needs root (network namespaces, raw sockets)";
    return false;
  }
  if (ip_binary().empty()) {
    why_not = "needs the ip command (iproute2)";
    return false;
  }
  // Root in a container may still lack CAP_SYS_ADMIN; try on a thread that ends at once.
  int unshare_errno = 0;
  std::thread([&] { unshare_errno = ::unshare(CLONE_NEWNET) == 0 ? 0 : errno; }).join();
  if (unshare_errno != 0) {
    why_not = std::string("cannot make a network namespace: ") + std::strerror(unshare_errno);
    return false;
  }
  return true;
}

#define SKIP_UNLESS_PRIVATE_NETWORK()                           \
  do {                                                          \
    std::string why_not;                                        \
    if (!bulwark::nettest::may_use_private_networks(why_not)) { \
      GTEST_SKIP() << why_not;                                  \
    }                                                           \
  } while (0)

// Runs `body` on a new thread in a new, unnamed network namespace holding lo
// and a veth pair a <-> b, all up. Returns the namespace ("net:[INODE]").
inline std::string in_private_network(const std::function<void()>& body) {
  std::string netns;
  std::thread thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
      return;
    }
    netns = netns_of("/proc/thread-self");
    // Never touch the caller's network: stop unless this thread really is
    // somewhere else than the process's main thread.
    if (netns.empty() || netns == netns_of("/proc/self")) {
      ADD_FAILURE() << "the thread's network namespace did not change";
      return;
    }
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"link", "add", "name", "a", "type", "veth", "peer", "name", "b"},
             {"link", "set", "dev", "lo", "up"},
             {"link", "set", "dev", "a", "up"},
             {"link", "set", "dev", "b", "up"}}) {
      if (const auto failed = run_ip(args); !failed.empty()) {
        ADD_FAILURE() << failed;
        return;
      }
    }
    body();
  });
  thread.join();
  return netns;
}

// A capture socket on `iface` for `protocol` (whole Ethernet frames).
inline int open_capture(const InterfaceInfo& iface, uint16_t protocol) {
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  sockaddr_ll local{};
  local.sll_family = AF_PACKET;
  local.sll_protocol = htons(protocol);
  local.sll_ifindex = iface.index;
  EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local), 0)
      << std::strerror(errno);
  return fd;
}

// The first frame on `fd` that `match` accepts, waiting at most timeout_ms.
inline std::optional<Frame> capture(int fd, int timeout_ms,
                                    const std::function<bool(const Frame&)>& match) {
  const int64_t deadline_us = mono_us() + timeout_ms * 1000LL;
  for (int64_t left_us = timeout_ms * 1000LL; left_us > 0; left_us = deadline_us - mono_us()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left_us / 1000) + 1) <= 0) continue;
    Frame frame(2048);
    const ssize_t n = ::recv(fd, frame.data(), frame.size(), MSG_DONTWAIT);
    if (n <= 0) continue;
    frame.resize(static_cast<std::size_t>(n));
    if (match(frame)) return frame;
  }
  return std::nullopt;
}

}  // namespace bulwark::nettest
