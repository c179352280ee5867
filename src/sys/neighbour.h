// Telling the link that an address moved, and asking whether another host
// holds it: gratuitous ARP and unsolicited neighbour advertisements after a
// `vip` starts, and a duplicate-address probe before it does.
//
// All sockets here are non-blocking and nothing sleeps: repeating an
// announcement or a probe (RFC 5227 sends three probes and two
// announcements) is the caller's timer's job. Everything needs CAP_NET_RAW.
//
// Thread-safety: the free functions may be called from any thread; an
// AddressConflictProbe belongs to its event loop's thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/error.h"
#include "sys/netlink.h"

namespace bulwark {

// One gratuitous ARP for an IPv4 address (RFC 5227 section 3, "ARP
// Announcement"): a broadcast ARP request whose sender and target protocol
// addresses are both `address` and whose sender hardware address is the
// interface's MAC, so that neighbours update their caches. Sent through an
// AF_PACKET socket. The interface needs a MAC (iface.mac non-zero).
Status announce_ipv4(const InterfaceInfo& iface, const IpAddress& address);

// One unsolicited neighbour advertisement (RFC 4861 section 7.2.6) for an
// IPv6 address: to ff02::1 with hop limit 255, the override flag set, the
// router flag as the interface forwards or not, and a target link-layer
// address option with the interface's MAC. Sent from `address` itself, on a
// raw ICMPv6 socket bound to the interface: the address must be on the
// interface already (Rtnetlink::add_address gives it no DAD, so it is usable
// at once).
Status announce_ipv6(const InterfaceInfo& iface, const IpAddress& address);

// A duplicate-address probe on an event loop. IPv4: an RFC 5227 ARP probe
// (broadcast request, sender IP 0.0.0.0, target IP `address`). IPv6: a
// DAD-style neighbour solicitation (RFC 4862 section 5.4.2: unspecified
// source, to the solicited-node multicast address of `address`, no
// link-layer option). Both are built and sent through an AF_PACKET socket,
// which is bound before the first probe leaves, so no answer is missed.
//
// A conflict is another MAC (frames from the interface's own MAC and our own
// outgoing frames are ignored) that, on this interface,
//   - sends an ARP request or reply with sender IP `address`, or an ARP probe
//     for `address` (RFC 5227 2.1.1: another host probing at the same time);
//   - sends a neighbour advertisement for target `address`, or a DAD
//     solicitation for it (RFC 4862 5.4.3).
// The caller decides how long to listen (RFC 5227 waits about a second;
// a failover that is in a hurry, less).
//
// Thread-safety: one thread, the loop's.
class AddressConflictProbe {
 public:
  // Opens the socket and sends the first probe.
  static Result<std::unique_ptr<AddressConflictProbe>> start(const InterfaceInfo& iface,
                                                             const IpAddress& address);
  ~AddressConflictProbe();  // closes the socket
  AddressConflictProbe(const AddressConflictProbe&) = delete;
  AddressConflictProbe& operator=(const AddressConflictProbe&) = delete;

  // Register for EPOLLIN (edge-triggered is fine: on_readable() drains it).
  // Non-blocking.
  int fd() const { return fd_; }
  // Sends one more probe, for callers that repeat them as RFC 5227 does.
  Status send_probe();
  // Reads everything that arrived (at most kFramesPerCallMax frames, so a
  // flood cannot hold the loop; the rest waits for the next event). Returns
  // the MAC ("02:00:00:00:00:02") of another host that claims the address,
  // once one did; from then on every call returns that MAC.
  std::optional<std::string> on_readable();

  static constexpr int kFramesPerCallMax = 1024;

 private:
  AddressConflictProbe(int fd, const InterfaceInfo& iface, const IpAddress& address)
      : fd_(fd), iface_(iface), address_(address) {}
  // The MAC of the host that a received frame shows claiming the address.
  std::optional<std::array<uint8_t, 6>> claimant(const uint8_t* frame, std::size_t length,
                                                 const std::array<uint8_t, 6>& source) const;

  int fd_ = -1;
  InterfaceInfo iface_;
  IpAddress address_;
  std::optional<std::string> conflict_mac_;
};

}  // namespace bulwark
