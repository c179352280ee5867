// IP addresses on network interfaces, through rtnetlink (the kernel's
// routing socket, via libmnl): what the built-in `vip` resource needs to
// look up an interface and to add, find and remove its address. Nothing here
// runs the `ip` command: a daemon that must move an address during an outage
// cannot depend on a helper binary, its output format or a fork.
//
// Thread-safety: IpAddress and the free functions are plain values; an
// Rtnetlink has one owner and is used from one thread at a time.
#pragma once

#include <sys/socket.h>  // AF_INET, AF_INET6: IpAddress::family

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

struct mnl_socket;
struct nlmsghdr;

namespace bulwark {

// An IPv4 or IPv6 address literal, without a port or a prefix length.
struct IpAddress {
  int family = 0;                   // AF_INET or AF_INET6; 0 when unset
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4
  // "192.0.2.100", "2001:db8::100"; "(none)" when unset.
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

// Only literals ("192.0.2.100", "2001:db8::100"): names are not resolved,
// and a prefix length, port, brackets or zone index are refused with a
// message that says which.
Result<IpAddress> parse_ip_address(const std::string& text);

struct InterfaceInfo {
  int index = 0;
  std::string name;
  std::array<uint8_t, 6> mac{};  // zero for interfaces without one (lo, tun)
  bool up = false;               // IFF_UP: administratively up
  bool lower_up = false;         // IFF_LOWER_UP: the link has carrier
};

// "02:00:00:00:00:01".
std::string mac_to_string(const std::array<uint8_t, 6>& mac);

// One NETLINK_ROUTE socket. Each call makes one or two synchronous
// requests (add_address looks before it adds) that the kernel answers at
// once; a receive waits at most kReceiveTimeoutMs, then the call fails with
// kTimeout (and a late answer is discarded by the next call). Failures
// carry user-facing messages such as
// "cannot add 192.0.2.100/24 to eth0: Operation not permitted".
//
// Thread-safety: none; one owner.
class Rtnetlink {
 public:
  static constexpr int kReceiveTimeoutMs = 1000;

  static Result<std::unique_ptr<Rtnetlink>> open();
  ~Rtnetlink();
  Rtnetlink(const Rtnetlink&) = delete;
  Rtnetlink& operator=(const Rtnetlink&) = delete;

  // kNotFound if no interface has this name; kInvalid if no interface could
  // (empty, or longer than 15 characters).
  Result<InterfaceInfo> interface(const std::string& name);

  // Adds ADDRESS/PREFIX to the interface (prefix 1-32 for IPv4, 1-128 for
  // IPv6: /0 would route everything to this interface).
  // IPv4: `label` is optional; when given it must be the interface's name or
  // start with "NAME:", at most 15 characters (kInvalid otherwise). IPv6 has
  // no labels: a non-empty one is kInvalid, not silently dropped.
  // IPv6 addresses get IFA_F_NODAD, so they are usable at once: the caller
  // probes for conflicts itself (AddressConflictProbe) before adding.
  // kConflict ("... is already on eth0") if the address is on the interface
  // already, with any prefix length; kNotFound if the interface is gone.
  Status add_address(const InterfaceInfo& iface, const IpAddress& address, int prefix_len,
                     const std::string& label);
  // Deletes exactly ADDRESS/PREFIX. Absent: Ok, so that stopping twice is
  // harmless. The same address with another prefix length is left alone
  // (it is not ours) and is also Ok; has_address() still sees it.
  Status delete_address(const InterfaceInfo& iface, const IpAddress& address, int prefix_len);
  // Whether the address is on the interface, with any prefix length.
  Result<bool> has_address(const InterfaceInfo& iface, const IpAddress& address);

 private:
  explicit Rtnetlink(mnl_socket* socket);
  // Sets `prefix_len` to that of `address` on the interface, nullopt if
  // absent. 0, or an errno value.
  int find_address(const InterfaceInfo& iface, const IpAddress& address,
                   std::optional<int>& prefix_len);
  // Sends `request` and feeds each answer to `callback` (an mnl_cb_t) until
  // the kernel's acknowledgement or the end of a dump. 0, or an errno value.
  int transact(void* request, int (*callback)(const nlmsghdr*, void*), void* data);
  void discard_stale_answers();

  mnl_socket* socket_ = nullptr;
  unsigned int port_id_ = 0;
  unsigned int sequence_ = 0;
  std::vector<char> receive_buffer_;
};

}  // namespace bulwark
