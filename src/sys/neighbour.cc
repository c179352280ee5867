#include "sys/neighbour.h"

#include <arpa/inet.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/if_ether.h>
#include <netinet/ip6.h>
#include <netpacket/packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

namespace bulwark {
namespace {

using Mac = std::array<uint8_t, 6>;

constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
// An IPv6 header and a neighbour solicitation without options.
constexpr std::size_t kSolicitationBytes = sizeof(ip6_hdr) + sizeof(nd_neighbor_solicit);
// ARP and neighbour discovery frames are small; a longer frame is cut here,
// which only drops options we do not read.
constexpr std::size_t kFrameBytesMax = 2048;

// Owns a descriptor until release().
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string os_reason() { return std::strerror(errno); }

// Why `address` cannot be announced or probed on `iface`, or nullopt.
std::optional<std::string> unusable(const InterfaceInfo& iface, const IpAddress& address,
                                    int family) {
  if (iface.index <= 0) return "the interface was not looked up";
  if (address.family != family)
    return address.to_string() + " is not an " + (family == AF_INET ? "IPv4" : "IPv6") + " address";
  if (iface.mac == Mac{}) return iface.name + " has no MAC address";
  return std::nullopt;
}

// A non-blocking AF_PACKET datagram socket: the kernel adds and strips the
// Ethernet header. With `receive` it is bound to `protocol` on the
// interface; it is made with protocol 0, so before that bind it receives
// nothing at all, not even other interfaces' frames.
Result<int> open_packet_socket(const InterfaceInfo& iface, uint16_t protocol, bool receive,
                               const std::string& what) {
  const int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_error(Errc::kIo, what + ": cannot open a packet socket: " + os_reason());
  if (!receive) return fd;
  sockaddr_ll local{};
  local.sll_family = AF_PACKET;
  local.sll_protocol = htons(protocol);
  local.sll_ifindex = iface.index;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
    auto error = make_error(Errc::kIo, what + ": cannot bind a packet socket: " + os_reason());
    ::close(fd);
    return error;
  }
  return fd;
}

Status send_frame(int fd, const InterfaceInfo& iface, uint16_t protocol, const Mac& destination,
                  const void* data, std::size_t length, const std::string& what) {
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(protocol);
  to.sll_ifindex = iface.index;
  to.sll_halen = static_cast<uint8_t>(destination.size());
  std::memcpy(to.sll_addr, destination.data(), destination.size());
  const ssize_t sent =
      ::sendto(fd, data, length, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  if (sent < 0) return make_error(Errc::kIo, what + ": " + os_reason());
  if (static_cast<std::size_t>(sent) != length)
    return make_error(Errc::kIo, what + ": the frame was cut short");
  return Ok{};
}

// An ARP request from `sender_mac`; the target hardware address is zero,
// as RFC 5227 asks of probes and announcements.
ether_arp make_arp_request(const Mac& sender_mac, const uint8_t* sender_ip,
                           const uint8_t* target_ip) {
  ether_arp arp{};
  arp.arp_hrd = htons(ARPHRD_ETHER);
  arp.arp_pro = htons(ETHERTYPE_IP);
  arp.arp_hln = ETH_ALEN;
  arp.arp_pln = 4;
  arp.arp_op = htons(ARPOP_REQUEST);
  std::memcpy(arp.arp_sha, sender_mac.data(), ETH_ALEN);
  std::memcpy(arp.arp_spa, sender_ip, 4);
  std::memcpy(arp.arp_tpa, target_ip, 4);
  return arp;
}

// ff02::1:ffXX:XXXX, from the address's low 24 bits (RFC 4291 2.7.1).
in6_addr solicited_node_address(const IpAddress& address) {
  in6_addr out{};
  out.s6_addr[0] = 0xff;
  out.s6_addr[1] = 0x02;
  out.s6_addr[11] = 0x01;
  out.s6_addr[12] = 0xff;
  std::memcpy(&out.s6_addr[13], &address.bytes[13], 3);
  return out;
}

// 33:33 and the group's low 32 bits (RFC 2464 section 7).
Mac multicast_mac(const in6_addr& group) {
  return {0x33, 0x33, group.s6_addr[12], group.s6_addr[13], group.s6_addr[14], group.s6_addr[15]};
}

// The ICMPv6 checksum over the pseudo-header and the message (RFC 8200 8.1).
uint16_t icmpv6_checksum(const in6_addr& source, const in6_addr& destination,
                         const uint8_t* message, std::size_t length) {
  uint32_t sum = 0;
  const auto add = [&sum](const uint8_t* bytes, std::size_t count) {
    for (std::size_t i = 0; i + 1 < count; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
    if (count % 2) sum += bytes[count - 1] << 8;
  };
  add(source.s6_addr, 16);
  add(destination.s6_addr, 16);
  sum += static_cast<uint32_t>(length >> 16) + static_cast<uint32_t>(length & 0xffff);
  sum += IPPROTO_ICMPV6;
  add(message, length);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

// The IPv6 packet of a DAD neighbour solicitation for `address` (RFC 4862
// 5.4.2): from ::, to the solicited-node group, hop limit 255, no options
// (a source link-layer option is forbidden with the unspecified source).
std::array<uint8_t, kSolicitationBytes> make_dad_solicitation(const IpAddress& address) {
  ip6_hdr ip{};
  ip.ip6_flow = htonl(6u << 28);
  ip.ip6_plen = htons(sizeof(nd_neighbor_solicit));
  ip.ip6_nxt = IPPROTO_ICMPV6;
  ip.ip6_hlim = 255;
  ip.ip6_dst = solicited_node_address(address);
  nd_neighbor_solicit ns{};
  ns.nd_ns_type = ND_NEIGHBOR_SOLICIT;
  std::memcpy(&ns.nd_ns_target, address.bytes.data(), 16);
  std::array<uint8_t, kSolicitationBytes> packet{};
  std::memcpy(packet.data() + sizeof ip, &ns, sizeof ns);
  const uint16_t checksum =
      icmpv6_checksum(ip.ip6_src, ip.ip6_dst, packet.data() + sizeof ip, sizeof ns);
  packet[sizeof ip + 2] = static_cast<uint8_t>(checksum >> 8);
  packet[sizeof ip + 3] = static_cast<uint8_t>(checksum & 0xff);
  std::memcpy(packet.data(), &ip, sizeof ip);
  return packet;
}

// A host that forwards says so in its advertisements: a router's neighbours
// would otherwise drop it from their default router list (RFC 4861 7.2.5).
bool forwards_ipv6(const InterfaceInfo& iface) {
  std::ifstream in("/proc/sys/net/ipv6/conf/" + iface.name + "/forwarding");
  int value = 0;
  return (in >> value) && value != 0;
}

Status configure_na_socket(int fd, const InterfaceInfo& iface, const IpAddress& address,
                           const std::string& what) {
  const int hops = 255;   // RFC 4861 7.1.2: receivers drop any other hop limit
  const int no_loop = 0;  // our own kernel would log "advertised our address"
  const int index = iface.index;
  if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface.name.c_str(),
                   static_cast<socklen_t>(iface.name.size())) != 0 ||
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) != 0 ||
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops) != 0 ||
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) != 0 ||
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &no_loop, sizeof no_loop) != 0)
    return make_error(Errc::kIo, what + ": cannot set up the ICMPv6 socket: " + os_reason());
  // Sent from the address itself, as the kernel sends its own.
  sockaddr_in6 local{};
  local.sin6_family = AF_INET6;
  std::memcpy(&local.sin6_addr, address.bytes.data(), 16);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
    if (errno == EADDRNOTAVAIL)
      return make_error(Errc::kInvalid,
                        what + ": " + address.to_string() + " is not on " + iface.name);
    return make_error(Errc::kIo, what + ": " + os_reason());
  }
  return Ok{};
}

// Whether the options of a neighbour advertisement are well formed, and the
// target link-layer address among them, if any.
bool find_target_mac(const uint8_t* options, std::size_t length, std::optional<Mac>& mac) {
  // Each option is at least 8 bytes long, so this ends within length / 8 steps.
  while (length >= 8) {
    const std::size_t option_bytes = std::size_t{options[1]} * 8;
    // RFC 4861 7.1.2: a zero-length option makes the whole message invalid.
    if (option_bytes == 0 || option_bytes > length) return false;
    if (options[0] == ND_OPT_TARGET_LINKADDR) {
      mac.emplace();
      std::memcpy(mac->data(), options + 2, mac->size());
    }
    options += option_bytes;
    length -= option_bytes;
  }
  return true;
}

}  // namespace

Status announce_ipv4(const InterfaceInfo& iface, const IpAddress& address) {
  const std::string what = "cannot announce " + address.to_string() + " on " + iface.name;
  if (auto reason = unusable(iface, address, AF_INET))
    return make_error(Errc::kInvalid, what + ": " + *reason);
  auto fd = open_packet_socket(iface, ETH_P_ARP, false, what);
  if (!fd) return fd.error();
  Descriptor socket(*fd);
  const ether_arp arp = make_arp_request(iface.mac, address.bytes.data(), address.bytes.data());
  return send_frame(socket.get(), iface, ETH_P_ARP, kBroadcastMac, &arp, sizeof arp, what);
}

Status announce_ipv6(const InterfaceInfo& iface, const IpAddress& address) {
  const std::string what = "cannot announce " + address.to_string() + " on " + iface.name;
  if (auto reason = unusable(iface, address, AF_INET6))
    return make_error(Errc::kInvalid, what + ": " + *reason);
  const int fd = ::socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMPV6);
  if (fd < 0) return make_error(Errc::kIo, what + ": cannot open an ICMPv6 socket: " + os_reason());
  Descriptor socket(fd);
  if (auto configured = configure_na_socket(fd, iface, address, what); !configured)
    return configured;
  // The advertisement and one target link-layer address option (8 bytes:
  // type, length in units of 8 bytes, the MAC). The kernel fills in the
  // checksum of raw ICMPv6 sockets.
  struct {
    nd_neighbor_advert advert;
    nd_opt_hdr option;
    uint8_t mac[6];
  } message{};
  static_assert(sizeof message == sizeof(nd_neighbor_advert) + 8);
  message.advert.nd_na_type = ND_NEIGHBOR_ADVERT;
  message.advert.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
  if (forwards_ipv6(iface)) message.advert.nd_na_flags_reserved |= ND_NA_FLAG_ROUTER;
  std::memcpy(&message.advert.nd_na_target, address.bytes.data(), 16);
  message.option.nd_opt_type = ND_OPT_TARGET_LINKADDR;
  message.option.nd_opt_len = 1;
  std::memcpy(message.mac, iface.mac.data(), sizeof message.mac);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  to.sin6_scope_id = static_cast<uint32_t>(iface.index);
  const ssize_t sent =
      ::sendto(fd, &message, sizeof message, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  if (sent < 0) return make_error(Errc::kIo, what + ": " + os_reason());
  return Ok{};
}

Result<std::unique_ptr<AddressConflictProbe>> AddressConflictProbe::start(
    const InterfaceInfo& iface, const IpAddress& address) {
  const std::string what = "cannot probe for " + address.to_string() + " on " + iface.name;
  const int family = address.family == AF_INET6 ? AF_INET6 : AF_INET;
  if (auto reason = unusable(iface, address, family))
    return make_error(Errc::kInvalid, what + ": " + *reason);
  const uint16_t protocol = family == AF_INET ? ETH_P_ARP : ETH_P_IPV6;
  auto fd = open_packet_socket(iface, protocol, true, what);
  if (!fd) return fd.error();
  std::unique_ptr<AddressConflictProbe> probe(new AddressConflictProbe(*fd, iface, address));
  if (family == AF_INET6) {
    // Another host's DAD solicitation for the address goes to its
    // solicited-node group, which a NIC's multicast filter would drop
    // unless we join it at the link layer.
    packet_mreq membership{};
    membership.mr_ifindex = iface.index;
    membership.mr_type = PACKET_MR_MULTICAST;
    membership.mr_alen = ETH_ALEN;
    const Mac group = multicast_mac(solicited_node_address(address));
    std::memcpy(membership.mr_address, group.data(), group.size());
    if (::setsockopt(*fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &membership, sizeof membership) != 0)
      return make_error(Errc::kIo, what + ": cannot join the solicited-node group: " + os_reason());
  }
  if (auto sent = probe->send_probe(); !sent) return sent.error();
  return probe;
}

AddressConflictProbe::~AddressConflictProbe() {
  if (fd_ >= 0) ::close(fd_);
}

Status AddressConflictProbe::send_probe() {
  const std::string what = "cannot probe for " + address_.to_string() + " on " + iface_.name;
  if (address_.family == AF_INET) {
    const uint8_t unspecified[4] = {};
    const ether_arp arp = make_arp_request(iface_.mac, unspecified, address_.bytes.data());
    return send_frame(fd_, iface_, ETH_P_ARP, kBroadcastMac, &arp, sizeof arp, what);
  }
  const auto packet = make_dad_solicitation(address_);
  const Mac destination = multicast_mac(solicited_node_address(address_));
  return send_frame(fd_, iface_, ETH_P_IPV6, destination, packet.data(), packet.size(), what);
}

std::optional<std::string> AddressConflictProbe::on_readable() {
  std::array<uint8_t, kFrameBytesMax> frame;
  for (int i = 0; i < kFramesPerCallMax; ++i) {
    sockaddr_ll from{};
    socklen_t from_length = sizeof from;
    const ssize_t n = ::recvfrom(fd_, frame.data(), frame.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &from_length);
    if (n < 0) break;  // EAGAIN: drained; anything else: the next event says more
    // Our own probes come back as outgoing frames; a looped network can
    // return them as incoming ones, still from our MAC.
    if (conflict_mac_ || from.sll_pkttype == PACKET_OUTGOING || from.sll_halen != ETH_ALEN)
      continue;
    Mac source;
    std::memcpy(source.data(), from.sll_addr, source.size());
    if (source == iface_.mac) continue;
    const auto length = std::min(static_cast<std::size_t>(n), frame.size());
    if (auto mac = claimant(frame.data(), length, source)) conflict_mac_ = mac_to_string(*mac);
  }
  return conflict_mac_;
}

std::optional<Mac> AddressConflictProbe::claimant(const uint8_t* frame, std::size_t length,
                                                  const Mac& source) const {
  const uint8_t* ours = address_.bytes.data();
  if (address_.family == AF_INET) {
    ether_arp arp;
    if (length < sizeof arp) return std::nullopt;
    std::memcpy(&arp, frame, sizeof arp);
    if (ntohs(arp.arp_hrd) != ARPHRD_ETHER || ntohs(arp.arp_pro) != ETHERTYPE_IP ||
        arp.arp_hln != ETH_ALEN || arp.arp_pln != 4)
      return std::nullopt;
    Mac sender;
    std::memcpy(sender.data(), arp.arp_sha, sender.size());
    if (sender == iface_.mac) return std::nullopt;
    const uint8_t unspecified[4] = {};
    const bool uses_it = std::memcmp(arp.arp_spa, ours, 4) == 0;
    const bool probes_it = ntohs(arp.arp_op) == ARPOP_REQUEST &&
                           std::memcmp(arp.arp_spa, unspecified, 4) == 0 &&
                           std::memcmp(arp.arp_tpa, ours, 4) == 0;
    return uses_it || probes_it ? std::optional<Mac>(sender) : std::nullopt;
  }
  // Neighbour discovery is valid only with hop limit 255, i.e. from this
  // link (RFC 4861 7.1), and without extension headers in practice.
  ip6_hdr ip;
  if (length < kSolicitationBytes) return std::nullopt;
  std::memcpy(&ip, frame, sizeof ip);
  if ((ip.ip6_vfc >> 4) != 6 || ip.ip6_nxt != IPPROTO_ICMPV6 || ip.ip6_hlim != 255)
    return std::nullopt;
  const uint8_t* icmp = frame + sizeof ip;
  const std::size_t icmp_length = std::min<std::size_t>(length - sizeof ip, ntohs(ip.ip6_plen));
  // Both messages carry the target at offset 8 of a 24-byte body.
  if (icmp_length < sizeof(nd_neighbor_solicit) || icmp[1] != 0 ||
      std::memcmp(icmp + 8, ours, 16) != 0)
    return std::nullopt;
  if (icmp[0] == ND_NEIGHBOR_SOLICIT)
    return IN6_IS_ADDR_UNSPECIFIED(&ip.ip6_src) ? std::optional<Mac>(source) : std::nullopt;
  if (icmp[0] != ND_NEIGHBOR_ADVERT) return std::nullopt;
  std::optional<Mac> target_mac;
  if (!find_target_mac(icmp + sizeof(nd_neighbor_advert), icmp_length - sizeof(nd_neighbor_advert),
                       target_mac))
    return std::nullopt;
  const Mac claimant_mac = target_mac.value_or(source);
  if (claimant_mac == iface_.mac) return std::nullopt;
  return claimant_mac;
}

}  // namespace bulwark
