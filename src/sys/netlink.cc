#include "sys/netlink.h"

// <net/if.h> first: <linux/if.h> then adds only what glibc lacks (IFF_LOWER_UP).
#include <net/if.h>
// clang-format off
#include <linux/if.h>
// clang-format on
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace bulwark {
namespace {

// Interface names and IPv4 labels: IFNAMSIZ less the terminating NUL.
constexpr std::size_t kNameMax = IFNAMSIZ - 1;
// Large enough for the biggest single read of a dump, so none is truncated.
constexpr std::size_t kReceiveBytes = 32768;
// Our requests hold a header, one fixed struct and a few short attributes.
constexpr std::size_t kRequestBytes = 512;
// A dump of every address of a big host takes a few hundred reads; the
// bound only stops a loop on a kernel that never ends one.
constexpr int kReadsMax = 100000;
// transact()'s answer when the kernel did not answer in time.
constexpr int kNoAnswer = -1;

int address_bytes(int family) { return family == AF_INET ? 4 : 16; }

std::string describe(int err) {
  if (err == kNoAnswer)
    return "no answer from the kernel within " + std::to_string(Rtnetlink::kReceiveTimeoutMs) +
           " ms";
  return std::strerror(err);
}

// `what` is the failed step ("cannot add 192.0.2.100/24 to eth0").
Error os_error(const std::string& what, int err) {
  if (err == kNoAnswer) return make_error(Errc::kTimeout, what + ": " + describe(err));
  if (err == ENODEV) return make_error(Errc::kNotFound, what + ": the interface no longer exists");
  return make_error(Errc::kIo, what + ": " + describe(err));
}

// Why this request cannot be sent, or nullopt.
std::optional<std::string> invalid_request(const InterfaceInfo& iface, const IpAddress& address,
                                           int prefix_len) {
  if (iface.index <= 0) return "the interface was not looked up";
  if (address.family != AF_INET && address.family != AF_INET6) return "no address given";
  const int bits = address_bytes(address.family) * 8;
  if (prefix_len < 1 || prefix_len > bits)
    return "prefix length " + std::to_string(prefix_len) + " is out of range (1-" +
           std::to_string(bits) + ")";
  return std::nullopt;
}

std::optional<std::string> invalid_label(const InterfaceInfo& iface, const IpAddress& address,
                                         const std::string& label) {
  if (label.empty()) return std::nullopt;
  if (address.family != AF_INET) return "labels exist only for IPv4 addresses";
  if (label != iface.name && label.rfind(iface.name + ":", 0) != 0)
    return "label '" + label + "' must be " + iface.name + " or start with '" + iface.name + ":'";
  if (label.size() > kNameMax)
    return "label '" + label + "' is longer than " + std::to_string(kNameMax) + " characters";
  for (const char c : label) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return "label '" + label + "' contains a space or control character";
  }
  return std::nullopt;
}

int parse_link_attribute(const nlattr* attr, void* data) {
  auto* info = static_cast<InterfaceInfo*>(data);
  const auto type = mnl_attr_get_type(attr);
  if (type == IFLA_IFNAME && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) {
    info->name = mnl_attr_get_str(attr);
  } else if (type == IFLA_ADDRESS && mnl_attr_get_payload_len(attr) == info->mac.size()) {
    // Other link types (tunnels, InfiniBand) have other address lengths:
    // they keep a zero MAC, as they cannot be announced with ARP anyway.
    std::memcpy(info->mac.data(), mnl_attr_get_payload(attr), info->mac.size());
  }
  return MNL_CB_OK;
}

int parse_link(const nlmsghdr* nlh, void* data) {
  if (nlh->nlmsg_type != RTM_NEWLINK) return MNL_CB_OK;
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg)) {
    errno = EPROTO;
    return MNL_CB_ERROR;
  }
  auto* info = static_cast<InterfaceInfo*>(data);
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  info->index = ifi->ifi_index;
  info->up = (ifi->ifi_flags & IFF_UP) != 0;
  info->lower_up = (ifi->ifi_flags & IFF_LOWER_UP) != 0;
  return mnl_attr_parse(nlh, sizeof(ifinfomsg), parse_link_attribute, info);
}

// One address dump: which interface and address it looks for, and what it found.
struct AddressSearch {
  int index = 0;
  IpAddress address;
  std::optional<int> prefix_len;
  // The attributes of the message being parsed.
  const nlattr* local = nullptr;
  const nlattr* peer = nullptr;
};

int parse_address_attribute(const nlattr* attr, void* data) {
  auto* search = static_cast<AddressSearch*>(data);
  const auto type = mnl_attr_get_type(attr);
  const auto bytes = static_cast<uint16_t>(address_bytes(search->address.family));
  if (mnl_attr_get_payload_len(attr) != bytes) return MNL_CB_OK;
  if (type == IFA_LOCAL) search->local = attr;
  if (type == IFA_ADDRESS) search->peer = attr;
  return MNL_CB_OK;
}

int parse_address(const nlmsghdr* nlh, void* data) {
  if (nlh->nlmsg_type != RTM_NEWADDR) return MNL_CB_OK;
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ifaddrmsg)) {
    errno = EPROTO;
    return MNL_CB_ERROR;
  }
  auto* search = static_cast<AddressSearch*>(data);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  // Without strict checking (kernels before 4.20) a dump has every
  // interface's addresses.
  if (ifa->ifa_family != search->address.family ||
      static_cast<int>(ifa->ifa_index) != search->index)
    return MNL_CB_OK;
  search->local = search->peer = nullptr;
  if (mnl_attr_parse(nlh, sizeof(ifaddrmsg), parse_address_attribute, search) < 0)
    return MNL_CB_ERROR;
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
  // point-to-point links and the same address everywhere else (and IPv6
  // sends only IFA_ADDRESS unless there is a peer).
  const nlattr* own = search->local ? search->local : search->peer;
  if (own && std::memcmp(mnl_attr_get_payload(own), search->address.bytes.data(),
                         address_bytes(search->address.family)) == 0)
    search->prefix_len = ifa->ifa_prefixlen;
  return MNL_CB_OK;
}

// The fixed part of an address request; its attributes come after.
nlmsghdr* put_address_request(char* buffer, uint16_t type, uint16_t flags,
                              const InterfaceInfo& iface, const IpAddress& address,
                              int prefix_len) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(address.family);
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix_len);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(iface.index);
  return nlh;
}

void put_address_attributes(nlmsghdr* nlh, const IpAddress& address) {
  // Both, as `ip address` sends them: IFA_LOCAL names the address, and
  // IFA_ADDRESS equal to it says there is no point-to-point peer.
  const auto bytes = static_cast<std::size_t>(address_bytes(address.family));
  mnl_attr_put(nlh, IFA_LOCAL, bytes, address.bytes.data());
  mnl_attr_put(nlh, IFA_ADDRESS, bytes, address.bytes.data());
}

}  // namespace

std::string IpAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if ((family != AF_INET && family != AF_INET6) ||
      !inet_ntop(family, bytes.data(), text, sizeof text))
    return "(none)";
  return text;
}

Result<IpAddress> parse_ip_address(const std::string& text) {
  const std::string quoted = "'" + text + "' is not an IP address";
  if (text.empty()) return make_error(Errc::kInvalid, "the IP address is empty");
  if (text.find('/') != std::string::npos)
    return make_error(Errc::kInvalid, quoted + ": give the prefix length separately");
  if (text.find('[') != std::string::npos)
    return make_error(Errc::kInvalid, quoted + ": write IPv6 addresses without brackets");
  if (text.find('%') != std::string::npos)
    return make_error(Errc::kInvalid, quoted + ": a zone index (%INTERFACE) is not allowed");
  IpAddress out;
  if (inet_pton(AF_INET, text.c_str(), out.bytes.data()) == 1) {
    out.family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), out.bytes.data()) == 1) {
    out.family = AF_INET6;
  } else if (text.find('.') != std::string::npos && text.find(':') != std::string::npos &&
             text.find(':') == text.rfind(':')) {
    return make_error(Errc::kInvalid, quoted + ": a port is not allowed here");
  } else {
    return make_error(Errc::kInvalid, quoted + " (host names are not resolved)");
  }
  return out;
}

std::string mac_to_string(const std::array<uint8_t, 6>& mac) {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return text;
}

Result<std::unique_ptr<Rtnetlink>> Rtnetlink::open() {
  mnl_socket* socket = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!socket)
    return make_error(Errc::kIo,
                      std::string("cannot open a netlink socket: ") + std::strerror(errno));
  // From here the destructor closes the socket.
  std::unique_ptr<Rtnetlink> out(new Rtnetlink(socket));
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0)
    return make_error(Errc::kIo,
                      std::string("cannot bind a netlink socket: ") + std::strerror(errno));
  const timeval timeout{kReceiveTimeoutMs / 1000, suseconds_t{kReceiveTimeoutMs % 1000} * 1000};
  if (::setsockopt(mnl_socket_get_fd(socket), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout))
    return make_error(
        Errc::kIo, std::string("cannot set the netlink receive timeout: ") + std::strerror(errno));
  // Optional: strict checking makes the kernel filter address dumps by
  // interface (we filter again, for kernels without it), and a capped
  // acknowledgement does not echo our request back.
  int on = 1;
  mnl_socket_setsockopt(socket, NETLINK_GET_STRICT_CHK, &on, sizeof on);
  mnl_socket_setsockopt(socket, NETLINK_CAP_ACK, &on, sizeof on);
  out->port_id_ = mnl_socket_get_portid(socket);
  return out;
}

Rtnetlink::Rtnetlink(mnl_socket* socket) : socket_(socket), receive_buffer_(kReceiveBytes) {}

Rtnetlink::~Rtnetlink() {
  if (socket_) mnl_socket_close(socket_);
}

void Rtnetlink::discard_stale_answers() {
  // Only answers to an earlier request that timed out can be waiting here;
  // their sequence numbers would fail the next mnl_cb_run.
  for (int reads = 0; reads < kReadsMax; ++reads) {
    if (::recv(mnl_socket_get_fd(socket_), receive_buffer_.data(), receive_buffer_.size(),
               MSG_DONTWAIT) < 0)
      return;
  }
}

int Rtnetlink::transact(void* request, int (*callback)(const nlmsghdr*, void*), void* data) {
  discard_stale_answers();
  auto* nlh = static_cast<nlmsghdr*>(request);
  nlh->nlmsg_seq = ++sequence_;
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) return errno;
  for (int reads = 0; reads < kReadsMax; ++reads) {
    const ssize_t n = mnl_socket_recvfrom(socket_, receive_buffer_.data(), receive_buffer_.size());
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? kNoAnswer : errno;
    // MNL_CB_STOP: the acknowledgement (an error of 0) or the end of a dump.
    const int rc = mnl_cb_run(receive_buffer_.data(), static_cast<size_t>(n), nlh->nlmsg_seq,
                              port_id_, callback, data);
    if (rc == MNL_CB_ERROR) return errno != 0 ? errno : EPROTO;
    if (rc == MNL_CB_STOP) return 0;
  }
  return EPROTO;
}

Result<InterfaceInfo> Rtnetlink::interface(const std::string& name) {
  const std::string what = "cannot look up interface '" + name + "'";
  if (name.empty()) return make_error(Errc::kInvalid, "cannot look up an interface without a name");
  if (name.size() > kNameMax || name.find('\0') != std::string::npos)
    return make_error(Errc::kInvalid, what + ": interface names have at most " +
                                          std::to_string(kNameMax) + " characters");
  alignas(nlmsghdr) char request[kRequestBytes] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(request);
  nlh->nlmsg_type = RTM_GETLINK;
  // NLM_F_ACK: the kernel's acknowledgement after the link is what ends the wait.
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  InterfaceInfo info;
  const int err = transact(request, parse_link, &info);
  if (err == ENODEV)
    return make_error(Errc::kNotFound, "no network interface named '" + name + "'");
  if (err != 0) return os_error(what, err);
  if (info.index <= 0) return os_error(what, EPROTO);
  return info;
}

int Rtnetlink::find_address(const InterfaceInfo& iface, const IpAddress& address,
                            std::optional<int>& prefix_len) {
  alignas(nlmsghdr) char request[kRequestBytes] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(request);
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(address.family);
  ifa->ifa_index = static_cast<uint32_t>(iface.index);
  AddressSearch search;
  search.index = iface.index;
  search.address = address;
  const int err = transact(request, parse_address, &search);
  prefix_len = search.prefix_len;
  return err;
}

Result<bool> Rtnetlink::has_address(const InterfaceInfo& iface, const IpAddress& address) {
  const std::string what = "cannot look for " + address.to_string() + " on " + iface.name;
  if (iface.index <= 0)
    return make_error(Errc::kInvalid, what + ": the interface was not looked up");
  if (address.family != AF_INET && address.family != AF_INET6)
    return make_error(Errc::kInvalid, what + ": no address given");
  std::optional<int> prefix_len;
  if (const int err = find_address(iface, address, prefix_len); err != 0)
    return os_error(what, err);
  return prefix_len.has_value();
}

Status Rtnetlink::add_address(const InterfaceInfo& iface, const IpAddress& address, int prefix_len,
                              const std::string& label) {
  const std::string what =
      "cannot add " + address.to_string() + "/" + std::to_string(prefix_len) + " to " + iface.name;
  auto invalid = invalid_request(iface, address, prefix_len);
  if (!invalid) invalid = invalid_label(iface, address, label);
  if (invalid) return make_error(Errc::kInvalid, what + ": " + *invalid);
  // The kernel refuses a duplicate only with the same prefix length (IPv4);
  // the same address twice with two prefixes is never what a VIP wants.
  std::optional<int> present_prefix_len;
  if (const int err = find_address(iface, address, present_prefix_len); err != 0)
    return os_error(what, err);
  if (present_prefix_len)
    return make_error(Errc::kConflict, what + ": " + address.to_string() + " is already on " +
                                           iface.name + " (as /" +
                                           std::to_string(*present_prefix_len) + ")");
  alignas(nlmsghdr) char request[kRequestBytes] = {};
  nlmsghdr* nlh = put_address_request(request, RTM_NEWADDR,
                                      NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, iface,
                                      address, prefix_len);
  put_address_attributes(nlh, address);
  if (address.family == AF_INET6) {
    // No duplicate address detection: the address is usable at once, and
    // the kernel never marks it "dadfailed" behind the caller's back.
    static_cast<ifaddrmsg*>(mnl_nlmsg_get_payload(nlh))->ifa_flags = IFA_F_NODAD;
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  } else if (!label.empty()) {
    mnl_attr_put_strz(nlh, IFA_LABEL, label.c_str());
  }
  const int err = transact(request, nullptr, nullptr);
  if (err == EEXIST)
    return make_error(Errc::kConflict,
                      what + ": " + address.to_string() + " is already on " + iface.name);
  if (err != 0) return os_error(what, err);
  return Ok{};
}

Status Rtnetlink::delete_address(const InterfaceInfo& iface, const IpAddress& address,
                                 int prefix_len) {
  const std::string what = "cannot delete " + address.to_string() + "/" +
                           std::to_string(prefix_len) + " from " + iface.name;
  if (auto invalid = invalid_request(iface, address, prefix_len))
    return make_error(Errc::kInvalid, what + ": " + *invalid);
  alignas(nlmsghdr) char request[kRequestBytes] = {};
  nlmsghdr* nlh = put_address_request(request, RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, iface,
                                      address, prefix_len);
  put_address_attributes(nlh, address);
  const int err = transact(request, nullptr, nullptr);
  // Both families answer EADDRNOTAVAIL when no address matches.
  if (err == EADDRNOTAVAIL) return Ok{};
  if (err != 0) return os_error(what, err);
  return Ok{};
}

}  // namespace bulwark
