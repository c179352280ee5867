// Tests of rtnetlink addresses (sys/netlink.h) and of announcements and
// conflict probes on the link (sys/neighbour.h). All but the parsing tests
// need root and run in a private network (private_network.h). Only
// documentation addresses (192.0.2.0/24, 2001:db8::/32) are ever assigned.
#include "sys/netlink.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/if_ether.h>
#include <netinet/ip6.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include "sys/event_loop.h"
#include "sys/neighbour.h"
#include "sys/private_network.h"
#include "sys/process.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

using nettest::capture;
using nettest::Frame;
using nettest::in_private_network;
using nettest::ip_output;
using nettest::netns_of;
using nettest::open_capture;
using nettest::run_ip;
using Mac = std::array<uint8_t, 6>;

IpAddress ip_of(const std::string& text) {
  auto parsed = parse_ip_address(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? *parsed : IpAddress{};
}

// ---- parsing: no privileges needed ----

TEST(IpAddressTest, ParsesIpv4AndIpv6Literals) {
  const auto v4 = parse_ip_address("192.0.2.100");
  ASSERT_TRUE(v4.ok()) << v4.error().message;
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ((std::array<uint8_t, 4>{v4->bytes[0], v4->bytes[1], v4->bytes[2], v4->bytes[3]}),
            (std::array<uint8_t, 4>{192, 0, 2, 100}));
  EXPECT_EQ(v4->to_string(), "192.0.2.100");
  const auto v6 = parse_ip_address("2001:DB8:0:0::100");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->bytes[0], 0x20);
  EXPECT_EQ(v6->bytes[15], 0x00);
  EXPECT_EQ(v6->bytes[14], 0x01);
  EXPECT_EQ(v6->to_string(), "2001:db8::100");  // canonical form
  EXPECT_EQ(*v6, ip_of("2001:db8::100"));
  EXPECT_FALSE(*v6 == ip_of("2001:db8::101"));
  EXPECT_EQ(IpAddress{}.to_string(), "(none)");
}

TEST(IpAddressTest, RejectsBadLiteralsWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"192.0.2.100/24", "prefix length separately"},
      {"[2001:db8::1]", "without brackets"},
      {"fe80::1%eth0", "zone index"},
      {"192.0.2.1:80", "port"},
      {"vip.example.com", "host names are not resolved"},
      {"192.0.2.256", "not an IP address"},
      {"192.0.2", "not an IP address"},
      {"192.0.2.01", "not an IP address"},
      {"2001:db8::1::2", "not an IP address"},
      {" 192.0.2.1", "not an IP address"},
  };
  for (const auto& [text, reason] : cases) {
    const auto parsed = parse_ip_address(text);
    ASSERT_FALSE(parsed.ok()) << "'" << text << "' was accepted";
    EXPECT_EQ(parsed.error().code, Errc::kInvalid) << text;
    EXPECT_NE(parsed.error().message.find(reason), std::string::npos)
        << text << ": " << parsed.error().message;
  }
}

TEST(IpAddressTest, MacToStringIsLowerCaseWithColons) {
  EXPECT_EQ(mac_to_string({0x02, 0x00, 0x00, 0x00, 0x00, 0x01}), "02:00:00:00:00:01");
  EXPECT_EQ(mac_to_string({0xde, 0xad, 0xBE, 0xef, 0x0a, 0xff}), "de:ad:be:ef:0a:ff");
}

// Both ends of the veth pair, looked up through Rtnetlink.
struct Link {
  std::unique_ptr<Rtnetlink> netlink;
  InterfaceInfo a;
  InterfaceInfo b;
};

std::optional<Link> open_link() {
  auto netlink = Rtnetlink::open();
  if (!netlink) {
    ADD_FAILURE() << netlink.error().message;
    return std::nullopt;
  }
  auto a = (*netlink)->interface("a");
  auto b = (*netlink)->interface("b");
  if (!a || !b) {
    ADD_FAILURE() << (a ? b.error().message : a.error().message);
    return std::nullopt;
  }
  return Link{std::move(*netlink), *a, *b};
}

// Sends a whole Ethernet frame out of `iface`.
void inject(const InterfaceInfo& iface, const Frame& frame) {
  const int fd = open_capture(iface, ETH_P_ARP);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = iface.index;
  to.sll_halen = ETH_ALEN;
  EXPECT_EQ(::sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                     sizeof to),
            static_cast<ssize_t>(frame.size()))
      << std::strerror(errno);
  ::close(fd);
}

// What a probe reports within timeout_ms, driven by an edge-triggered loop
// as the vip resource will drive it.
std::optional<std::string> wait_for_conflict(AddressConflictProbe& probe, int timeout_ms) {
  EventLoop loop;
  EXPECT_TRUE(loop.add(probe.fd(), EPOLLIN | EPOLLET, 1).ok());
  const int64_t deadline_us = mono_us() + timeout_ms * 1000LL;
  for (int64_t left_us = timeout_ms * 1000LL; left_us > 0; left_us = deadline_us - mono_us()) {
    for (const auto& event : loop.wait(static_cast<int>(left_us / 1000) + 1)) {
      if (event.data.u64 != 1) continue;
      if (auto mac = probe.on_readable()) return mac;
    }
  }
  loop.remove(probe.fd());
  return std::nullopt;
}

Mac mac_from_kernel(const std::string& name) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  EXPECT_EQ(::ioctl(fd, SIOCGIFHWADDR, &request), 0) << std::strerror(errno);
  ::close(fd);
  Mac mac;
  std::memcpy(mac.data(), request.ifr_hwaddr.sa_data, mac.size());
  return mac;
}

// ---- Rtnetlink ----

TEST(NetlinkTest, LeavesNothingInTheCallersNamespace) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  EXPECT_EQ(::if_nametoindex("a"), 0u) << "this host already has an interface named a";
  bool saw_link = false;
  const std::string netns = in_private_network([&] {
    const auto link = open_link();
    saw_link = link.has_value() && link->a.index > 0 && link->b.index > 0;
  });
  EXPECT_TRUE(saw_link);
  EXPECT_NE(netns, netns_of("/proc/self"));
  // The veth pair never existed here, and no thread of ours is still in the
  // private namespace to keep it alive.
  EXPECT_EQ(::if_nametoindex("a"), 0u);
  EXPECT_EQ(::if_nametoindex("b"), 0u);
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task"))
    EXPECT_NE(netns_of(task.path().string()), netns) << task.path();
}

TEST(NetlinkTest, InterfaceReportsIndexNameMacAndFlags) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto netlink = Rtnetlink::open();
    ASSERT_TRUE(netlink.ok()) << netlink.error().message;
    const auto a = (*netlink)->interface("a");
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_EQ(a->index, static_cast<int>(::if_nametoindex("a")));
    EXPECT_EQ(a->name, "a");
    EXPECT_EQ(a->mac, mac_from_kernel("a"));
    EXPECT_NE(a->mac, Mac{});
    EXPECT_TRUE(a->up);
    EXPECT_TRUE(a->lower_up);
    const auto lo = (*netlink)->interface("lo");
    ASSERT_TRUE(lo.ok()) << lo.error().message;
    EXPECT_EQ(lo->mac, Mac{});
    EXPECT_TRUE(lo->up);
    ASSERT_TRUE(run_ip({"link", "set", "dev", "b", "down"}).empty());
    const auto a_without_peer = (*netlink)->interface("a");
    ASSERT_TRUE(a_without_peer.ok());
    EXPECT_TRUE(a_without_peer->up);
    EXPECT_FALSE(a_without_peer->lower_up);  // a veth has carrier only while its peer is up
  });
}

TEST(NetlinkTest, MissingOrImpossibleInterfaceNames) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto netlink = Rtnetlink::open();
    ASSERT_TRUE(netlink.ok()) << netlink.error().message;
    const auto missing = (*netlink)->interface("nosuch0");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, Errc::kNotFound);
    EXPECT_EQ(missing.error().message, "no network interface named 'nosuch0'");
    const auto empty = (*netlink)->interface("");
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().code, Errc::kInvalid);
    const auto too_long = (*netlink)->interface("abcdefghijklmnop");
    ASSERT_FALSE(too_long.ok());
    EXPECT_EQ(too_long.error().code, Errc::kInvalid);
    EXPECT_NE(too_long.error().message.find("at most 15 characters"), std::string::npos);
  });
}

TEST(NetlinkTest, AddsFindsAndDeletesIpv4WithLabel) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    Rtnetlink& nl = *link->netlink;
    const IpAddress vip = ip_of("192.0.2.100");
    ASSERT_TRUE(nl.add_address(link->a, vip, 24, "a:vip").ok());
    EXPECT_TRUE(*nl.has_address(link->a, vip));
    EXPECT_FALSE(*nl.has_address(link->b, vip));
    const std::string shown = ip_output({"-4", "address", "show", "dev", "a"});
    EXPECT_NE(shown.find("inet 192.0.2.100/24"), std::string::npos) << shown;
    EXPECT_NE(shown.find("a:vip"), std::string::npos) << shown;

    const auto again = nl.add_address(link->a, vip, 24, "a:vip");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, Errc::kConflict);
    EXPECT_EQ(again.error().message,
              "cannot add 192.0.2.100/24 to a: 192.0.2.100 is already on a (as /24)");

    ASSERT_TRUE(nl.delete_address(link->a, vip, 24).ok());
    EXPECT_FALSE(*nl.has_address(link->a, vip));
    EXPECT_TRUE(nl.delete_address(link->a, vip, 24).ok());  // absent: still Ok
    // Without a label the kernel labels it with the interface's name.
    ASSERT_TRUE(nl.add_address(link->a, vip, 32, "").ok());
    EXPECT_TRUE(*nl.has_address(link->a, vip));
    ASSERT_TRUE(nl.delete_address(link->a, vip, 32).ok());
    EXPECT_FALSE(*nl.has_address(link->a, vip));
  });
}

TEST(NetlinkTest, AddsFindsAndDeletesIpv6WithoutDad) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    Rtnetlink& nl = *link->netlink;
    const IpAddress vip = ip_of("2001:db8::100");
    const auto added = nl.add_address(link->a, vip, 64, "");
    ASSERT_TRUE(added.ok()) << added.error().message;
    EXPECT_TRUE(*nl.has_address(link->a, vip));
    const std::string shown = ip_output({"-6", "address", "show", "dev", "a"});
    EXPECT_NE(shown.find("inet6 2001:db8::100/64"), std::string::npos) << shown;
    EXPECT_NE(shown.find("nodad"), std::string::npos) << shown;
    const std::string line = shown.substr(shown.find("2001:db8::100"));
    EXPECT_EQ(line.substr(0, line.find('\n')).find("tentative"), std::string::npos) << shown;

    const auto again = nl.add_address(link->a, vip, 64, "");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, Errc::kConflict);
    EXPECT_NE(again.error().message.find("already on a"), std::string::npos);

    ASSERT_TRUE(nl.delete_address(link->a, vip, 64).ok());
    EXPECT_FALSE(*nl.has_address(link->a, vip));
    EXPECT_TRUE(nl.delete_address(link->a, vip, 64).ok());
  });
}

TEST(NetlinkTest, SameAddressWithAnotherPrefixIsAConflictAndIsNotDeleted) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    Rtnetlink& nl = *link->netlink;
    const IpAddress vip = ip_of("192.0.2.100");
    ASSERT_EQ(run_ip({"address", "add", "192.0.2.100/25", "dev", "a"}), "");
    const auto added = nl.add_address(link->a, vip, 24, "");
    ASSERT_FALSE(added.ok());
    EXPECT_EQ(added.error().code, Errc::kConflict);
    EXPECT_NE(added.error().message.find("(as /25)"), std::string::npos) << added.error().message;
    EXPECT_TRUE(nl.delete_address(link->a, vip, 24).ok());
    EXPECT_TRUE(*nl.has_address(link->a, vip));  // not ours: left alone
  });
}

TEST(NetlinkTest, RefusesBadLabelsAndPrefixes) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    Rtnetlink& nl = *link->netlink;
    const IpAddress v4 = ip_of("192.0.2.100");
    const IpAddress v6 = ip_of("2001:db8::100");
    const std::vector<std::tuple<IpAddress, int, std::string, std::string>> cases = {
        {v4, 24, "b:vip", "label 'b:vip' must be a or start with 'a:'"},
        {v4, 24, "ab", "label 'ab' must be a or start with 'a:'"},
        {v4, 24, "a:0123456789abcd", "longer than 15 characters"},
        {v4, 24, "a:v ip", "space or control character"},
        {v6, 64, "a:vip", "labels exist only for IPv4 addresses"},
        {v4, 33, "", "prefix length 33 is out of range (1-32)"},
        {v4, 0, "", "prefix length 0 is out of range (1-32)"},
        {v6, 129, "", "prefix length 129 is out of range (1-128)"},
    };
    for (const auto& [address, prefix, label, reason] : cases) {
      const auto added = nl.add_address(link->a, address, prefix, label);
      ASSERT_FALSE(added.ok()) << label;
      EXPECT_EQ(added.error().code, Errc::kInvalid) << label;
      EXPECT_NE(added.error().message.find(reason), std::string::npos) << added.error().message;
      EXPECT_FALSE(*nl.has_address(link->a, address));
    }
    // The longest label allowed.
    EXPECT_TRUE(nl.add_address(link->a, v4, 24, "a:0123456789abc").ok());
  });
}

TEST(NetlinkTest, ErrorsNameTheAddressAndTheInterface) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    InterfaceInfo gone = link->b;
    ASSERT_EQ(run_ip({"link", "delete", "dev", "b"}), "");  // takes a with it
    gone.name = "b";
    const auto added = link->netlink->add_address(gone, ip_of("192.0.2.100"), 24, "");
    ASSERT_FALSE(added.ok());
    EXPECT_EQ(added.error().code, Errc::kNotFound);
    EXPECT_EQ(added.error().message,
              "cannot add 192.0.2.100/24 to b: the interface no longer exists");
    const auto deleted = link->netlink->delete_address(gone, ip_of("2001:db8::100"), 64);
    ASSERT_FALSE(deleted.ok());
    EXPECT_EQ(deleted.error().code, Errc::kNotFound);
    EXPECT_EQ(deleted.error().message,
              "cannot delete 2001:db8::100/64 from b: the interface no longer exists");
  });
}

// Drops `capability` from the calling thread's effective set (capabilities
// belong to threads, so the rest of the test process keeps it).
void drop_capability(int capability) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  ASSERT_EQ(::syscall(SYS_capget, &header, data), 0) << std::strerror(errno);
  data[capability / 32].effective &= ~(1u << (capability % 32));
  ASSERT_EQ(::syscall(SYS_capset, &header, data), 0) << std::strerror(errno);
}

TEST(NetlinkTest, RefusalsByTheKernelSayWhatWasRefused) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    drop_capability(CAP_NET_ADMIN);
    drop_capability(CAP_NET_RAW);
    const auto added = link->netlink->add_address(link->a, ip_of("192.0.2.100"), 24, "");
    ASSERT_FALSE(added.ok());
    EXPECT_EQ(added.error().code, Errc::kIo);
    EXPECT_EQ(added.error().message, "cannot add 192.0.2.100/24 to a: Operation not permitted");
    // Reading needs no privilege.
    EXPECT_FALSE(*link->netlink->has_address(link->a, ip_of("192.0.2.100")));
    const auto announced = announce_ipv4(link->a, ip_of("192.0.2.100"));
    ASSERT_FALSE(announced.ok());
    EXPECT_EQ(announced.error().message,
              "cannot announce 192.0.2.100 on a: cannot open a packet socket: Operation not "
              "permitted");
  });
}

// ---- announcements ----

TEST(NeighbourTest, AnnounceIpv4IsAGratuitousArpOnTheLink) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    const int capture_fd = open_capture(link->b, ETH_P_ARP);
    const IpAddress vip = ip_of("192.0.2.100");
    const auto announced = announce_ipv4(link->a, vip);
    ASSERT_TRUE(announced.ok()) << announced.error().message;
    const auto frame = capture(capture_fd, 2000, [](const Frame& f) {
      return f.size() >= sizeof(ether_header) + sizeof(ether_arp);
    });
    ::close(capture_fd);
    ASSERT_TRUE(frame) << "no ARP frame reached b";
    ether_header eth;
    std::memcpy(&eth, frame->data(), sizeof eth);
    EXPECT_EQ(Mac(std::to_array(eth.ether_dhost)), (Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
    EXPECT_EQ(Mac(std::to_array(eth.ether_shost)), link->a.mac);
    EXPECT_EQ(ntohs(eth.ether_type), ETHERTYPE_ARP);
    ether_arp arp;
    std::memcpy(&arp, frame->data() + sizeof eth, sizeof arp);
    EXPECT_EQ(ntohs(arp.arp_hrd), ARPHRD_ETHER);
    EXPECT_EQ(ntohs(arp.arp_pro), ETHERTYPE_IP);
    EXPECT_EQ(arp.arp_hln, 6);
    EXPECT_EQ(arp.arp_pln, 4);
    EXPECT_EQ(ntohs(arp.arp_op), ARPOP_REQUEST);
    EXPECT_EQ(Mac(std::to_array(arp.arp_sha)), link->a.mac);
    EXPECT_EQ(std::memcmp(arp.arp_spa, vip.bytes.data(), 4), 0);
    EXPECT_EQ(Mac(std::to_array(arp.arp_tha)), Mac{});
    EXPECT_EQ(std::memcmp(arp.arp_tpa, vip.bytes.data(), 4), 0);
  });
}

// Whether the ICMPv6 checksum of `message` is right (RFC 8200 8.1).
bool icmpv6_checksum_ok(const ip6_hdr& ip, const uint8_t* message, std::size_t length) {
  std::vector<uint8_t> pseudo(ip.ip6_src.s6_addr, ip.ip6_src.s6_addr + 16);
  pseudo.insert(pseudo.end(), ip.ip6_dst.s6_addr, ip.ip6_dst.s6_addr + 16);
  pseudo.insert(pseudo.end(), {0, 0, static_cast<uint8_t>(length >> 8),
                               static_cast<uint8_t>(length & 0xff), 0, 0, 0, IPPROTO_ICMPV6});
  pseudo.insert(pseudo.end(), message, message + length);
  if (pseudo.size() % 2) pseudo.push_back(0);
  uint32_t sum = 0;
  for (std::size_t i = 0; i < pseudo.size(); i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

constexpr std::size_t kIcmpOffset = sizeof(ether_header) + sizeof(ip6_hdr);

bool is_icmpv6(const Frame& f, uint8_t type) {
  return f.size() >= kIcmpOffset + 4 && f[sizeof(ether_header) + 6] == IPPROTO_ICMPV6 &&
         f[kIcmpOffset] == type;
}

TEST(NeighbourTest, AnnounceIpv6IsAnUnsolicitedOverridingAdvertisement) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    const IpAddress vip = ip_of("2001:db8::100");
    ASSERT_TRUE(link->netlink->add_address(link->a, vip, 64, "").ok());
    const int capture_fd = open_capture(link->b, ETH_P_IPV6);
    const auto announced = announce_ipv6(link->a, vip);
    ASSERT_TRUE(announced.ok()) << announced.error().message;
    const auto frame = capture(capture_fd, 2000, [](const Frame& f) {
      return is_icmpv6(f, ND_NEIGHBOR_ADVERT) && f.size() >= kIcmpOffset + 32;
    });
    ::close(capture_fd);
    ASSERT_TRUE(frame) << "no neighbour advertisement reached b";
    ether_header eth;
    std::memcpy(&eth, frame->data(), sizeof eth);
    EXPECT_EQ(Mac(std::to_array(eth.ether_dhost)), (Mac{0x33, 0x33, 0, 0, 0, 1}));
    EXPECT_EQ(Mac(std::to_array(eth.ether_shost)), link->a.mac);
    ip6_hdr ip;
    std::memcpy(&ip, frame->data() + sizeof eth, sizeof ip);
    EXPECT_EQ(ip.ip6_hlim, 255);
    EXPECT_EQ(std::memcmp(&ip.ip6_src, vip.bytes.data(), 16), 0);
    EXPECT_EQ(std::memcmp(&ip.ip6_dst, ip_of("ff02::1").bytes.data(), 16), 0);
    ASSERT_EQ(ntohs(ip.ip6_plen), 32);
    nd_neighbor_advert na;
    std::memcpy(&na, frame->data() + kIcmpOffset, sizeof na);
    EXPECT_EQ(na.nd_na_code, 0);
    EXPECT_TRUE(na.nd_na_flags_reserved & ND_NA_FLAG_OVERRIDE);
    EXPECT_FALSE(na.nd_na_flags_reserved & ND_NA_FLAG_SOLICITED);
    EXPECT_FALSE(na.nd_na_flags_reserved &
                 ND_NA_FLAG_ROUTER);  // a fresh namespace forwards nothing
    EXPECT_EQ(std::memcmp(&na.nd_na_target, vip.bytes.data(), 16), 0);
    const uint8_t* option = frame->data() + kIcmpOffset + sizeof na;
    EXPECT_EQ(option[0], ND_OPT_TARGET_LINKADDR);
    EXPECT_EQ(option[1], 1);  // 8 bytes
    EXPECT_EQ(std::memcmp(option + 2, link->a.mac.data(), 6), 0);
    EXPECT_TRUE(icmpv6_checksum_ok(ip, frame->data() + kIcmpOffset, 32));
  });
}

TEST(NeighbourTest, AnnouncementsExplainWhatIsMissing) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    const auto lo = link->netlink->interface("lo");
    ASSERT_TRUE(lo.ok());
    const auto no_mac = announce_ipv4(*lo, ip_of("192.0.2.100"));
    ASSERT_FALSE(no_mac.ok());
    EXPECT_EQ(no_mac.error().code, Errc::kInvalid);
    EXPECT_EQ(no_mac.error().message, "cannot announce 192.0.2.100 on lo: lo has no MAC address");
    const auto not_there = announce_ipv6(link->a, ip_of("2001:db8::100"));
    ASSERT_FALSE(not_there.ok());
    EXPECT_EQ(not_there.error().message,
              "cannot announce 2001:db8::100 on a: 2001:db8::100 is not on a");
    const auto wrong_family = announce_ipv4(link->a, ip_of("2001:db8::100"));
    ASSERT_FALSE(wrong_family.ok());
    EXPECT_EQ(wrong_family.error().code, Errc::kInvalid);
    EXPECT_EQ(AddressConflictProbe::start(*lo, ip_of("192.0.2.100")).error().code, Errc::kInvalid);
  });
}

// ---- conflict probes ----

TEST(NeighbourTest, Ipv4ProbeSeesTheHostThatHoldsTheAddress) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    ASSERT_EQ(run_ip({"address", "add", "192.0.2.100/24", "dev", "b"}), "");
    auto probe = AddressConflictProbe::start(link->a, ip_of("192.0.2.100"));
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    const auto conflict = wait_for_conflict(**probe, 2000);
    ASSERT_TRUE(conflict) << "b's answer did not arrive";
    EXPECT_EQ(*conflict, mac_to_string(link->b.mac));
    EXPECT_EQ((*probe)->on_readable(), conflict);  // stays reported
  });
}

TEST(NeighbourTest, Ipv4ProbeSeesNoConflictWhenTheAddressIsFree) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    // b answers ARP for its own address, just not for the probed one. (Not
    // on a either: a and b share this namespace, and Linux answers ARP on
    // any interface for every address of the namespace, as a host would.)
    ASSERT_EQ(run_ip({"address", "add", "192.0.2.1/24", "dev", "b"}), "");
    auto probe = AddressConflictProbe::start(link->a, ip_of("192.0.2.100"));
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    // Our own announcement is not someone else's claim.
    ASSERT_TRUE(announce_ipv4(link->a, ip_of("192.0.2.100")).ok());
    {
      const auto none = wait_for_conflict(**probe, 200);
      EXPECT_FALSE(none) << *none;
    }
  });
}

// An Ethernet frame with an ARP request from `sender_mac` on the link.
Frame arp_frame(const Mac& sender_mac, const IpAddress& sender_ip, const IpAddress& target_ip) {
  Frame frame(sizeof(ether_header) + sizeof(ether_arp));
  ether_header eth{};
  std::memset(eth.ether_dhost, 0xff, ETH_ALEN);
  std::memcpy(eth.ether_shost, sender_mac.data(), ETH_ALEN);
  eth.ether_type = htons(ETHERTYPE_ARP);
  ether_arp arp{};
  arp.arp_hrd = htons(ARPHRD_ETHER);
  arp.arp_pro = htons(ETHERTYPE_IP);
  arp.arp_hln = ETH_ALEN;
  arp.arp_pln = 4;
  arp.arp_op = htons(ARPOP_REQUEST);
  std::memcpy(arp.arp_sha, sender_mac.data(), ETH_ALEN);
  std::memcpy(arp.arp_spa, sender_ip.bytes.data(), 4);
  std::memcpy(arp.arp_tpa, target_ip.bytes.data(), 4);
  std::memcpy(frame.data(), &eth, sizeof eth);
  std::memcpy(frame.data() + sizeof eth, &arp, sizeof arp);
  return frame;
}

TEST(NeighbourTest, Ipv4ProbeIgnoresItsOwnMacAndSeesAnotherHostsProbe) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    const IpAddress vip = ip_of("192.0.2.100");
    auto probe = AddressConflictProbe::start(link->a, vip);
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    // Arrives on a from outside, but from a's own MAC: a looped frame.
    inject(link->b, arp_frame(link->a.mac, vip, vip));
    {
      const auto none = wait_for_conflict(**probe, 200);
      EXPECT_FALSE(none) << *none;
    }
    // Another host probing for the same address at the same time (RFC 5227 2.1.1).
    inject(link->b, arp_frame(link->b.mac, IpAddress{AF_INET, {}}, vip));
    EXPECT_EQ(wait_for_conflict(**probe, 2000), mac_to_string(link->b.mac));
  });
}

TEST(NeighbourTest, Ipv6ProbeSeesTheHostThatHoldsTheAddress) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    ASSERT_EQ(run_ip({"-6", "address", "add", "2001:db8::100/64", "dev", "b", "nodad"}), "");
    const int capture_fd = open_capture(link->b, ETH_P_IPV6);
    auto probe = AddressConflictProbe::start(link->a, ip_of("2001:db8::100"));
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    const auto conflict = wait_for_conflict(**probe, 2000);
    // What b received: a DAD solicitation from :: to ff02::1:ff00:100.
    const auto solicitation = capture(capture_fd, 100, [](const Frame& f) {
      return is_icmpv6(f, ND_NEIGHBOR_SOLICIT) && f.size() >= kIcmpOffset + 24;
    });
    ::close(capture_fd);
    ASSERT_TRUE(conflict) << "b's advertisement did not arrive";
    EXPECT_EQ(*conflict, mac_to_string(link->b.mac));
    ASSERT_TRUE(solicitation);
    ip6_hdr ip;
    std::memcpy(&ip, solicitation->data() + sizeof(ether_header), sizeof ip);
    EXPECT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&ip.ip6_src));
    EXPECT_EQ(std::memcmp(&ip.ip6_dst, ip_of("ff02::1:ff00:100").bytes.data(), 16), 0);
    EXPECT_EQ(ip.ip6_hlim, 255);
    EXPECT_EQ(std::memcmp(solicitation->data(), "\x33\x33\xff\x00\x01\x00", 6), 0);
    EXPECT_TRUE(icmpv6_checksum_ok(ip, solicitation->data() + kIcmpOffset, 24));
  });
}

TEST(NeighbourTest, Ipv6ProbeSeesAnotherHostsDuplicateAddressDetection) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    auto probe = AddressConflictProbe::start(link->a, ip_of("2001:db8::100"));
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    // With DAD, b's kernel solicits for the address from :: after a random
    // delay of up to a second (rtr_solicit_delay) (RFC 4862 5.4.3).
    ASSERT_EQ(run_ip({"-6", "address", "add", "2001:db8::100/64", "dev", "b"}), "");
    EXPECT_EQ(wait_for_conflict(**probe, 3000), mac_to_string(link->b.mac));
  });
}

TEST(NeighbourTest, Ipv6ProbeSeesNoConflictWhenTheAddressIsFree) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([] {
    auto link = open_link();
    ASSERT_TRUE(link);
    ASSERT_EQ(run_ip({"-6", "address", "add", "2001:db8::1/64", "dev", "b", "nodad"}), "");
    ASSERT_TRUE(link->netlink->add_address(link->a, ip_of("2001:db8::100"), 64, "").ok());
    auto probe = AddressConflictProbe::start(link->a, ip_of("2001:db8::100"));
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    ASSERT_TRUE(announce_ipv6(link->a, ip_of("2001:db8::100")).ok());
    {
      const auto none = wait_for_conflict(**probe, 200);
      EXPECT_FALSE(none) << *none;
    }
  });
}

}  // namespace
}  // namespace bulwark
