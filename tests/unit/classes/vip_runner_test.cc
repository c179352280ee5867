// Tests of the built-in `vip` agent class: loopback VIPs (a marker file, no
// privileges), and real addresses in a private network (root; see
// sys/private_network.h): the conflict probe, the address through
// rtnetlink, the announcements on the link and their schedule.
#include "classes/vip/vip_runner.h"

#include <gtest/gtest.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/if_ether.h>
#include <netinet/ip6.h>

#include <filesystem>
#include <optional>
#include <string>

#include "classes/registry/agent_classes.h"
#include "sys/private_network.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;
using nettest::capture;
using nettest::Frame;
using nettest::in_private_network;
using nettest::open_capture;
using nettest::run_ip;

constexpr uint64_t kTagBase = uint64_t{1} << 60;

ResourceSpec vip_spec(const std::string& address, const std::string& interface, int probe_ms = 30) {
  const std::string yaml = "resources: [{name: v, agent: vip, params: {address: '" + address + "'" +
                           (interface.empty() ? "" : ", interface: " + interface) + ", prefix: '" +
                           (address.find(':') != std::string::npos ? "64" : "24") +
                           "', conflict_probe_ms: '" + std::to_string(probe_ms) + "'}}]\n";
  auto c = parse_resource_config(yaml, "test.yaml", agent_class_syntaxes());
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? c->resources[0] : ResourceSpec{};
}

// A VipRunner on a real loop and clock, driven as ClassDispatcher drives it.
class Driver {
 public:
  explicit Driver(const std::string& runtime_dir) : runner_(clock_, loop_, runtime_dir, kTagBase) {}

  OpCompletion run(OpKind kind, const ResourceSpec& spec, int timeout_ms = 5000) {
    OpRequest r;
    r.id = next_id_++;
    r.kind = kind;
    r.spec = spec;
    r.vars = InstanceVars{"n1", "192.0.2.1", spec.name, spec.name + ":n1"};
    r.timeout_ms = timeout_ms;
    runner_.begin(r);
    const int64_t deadline = clock_.mono_ms() + 5000;
    while (clock_.mono_ms() < deadline) {
      turn(10);
      for (auto& c : completions_) {
        if (c.id == r.id) return c;
      }
    }
    ADD_FAILURE() << op_kind_name(kind) << ": no answer";
    return OpCompletion{.id = r.id,
                        .resource = spec.name,
                        .kind = kind,
                        .outcome = OpOutcome::kTimeout,
                        .detail = "no answer"};
  }
  // Turns the loop for `ms` (announcements still due are sent meanwhile).
  void run_for(int64_t ms) {
    const int64_t until = clock_.mono_ms() + ms;
    while (clock_.mono_ms() < until) turn(until - clock_.mono_ms());
  }

 private:
  void turn(int64_t max_wait_ms) {
    const int64_t now = clock_.mono_ms();
    const int64_t wait = std::clamp<int64_t>(runner_.next_deadline_ms() - now, 0, max_wait_ms);
    for (const epoll_event& ev : loop_.wait(static_cast<int>(wait)))
      runner_.on_event(ev.data.u64, ev.events);
    runner_.tick();
    runner_.take_completions(completions_);
  }

  SystemClock clock_;
  EventLoop loop_;
  VipRunner runner_;
  uint64_t next_id_ = 1;
  std::vector<OpCompletion> completions_;
};

class VipRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bulwark-vip-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(VipRunnerTest, ALoopbackVipIsAMarkerAndNeedsNoPrivileges) {
  Driver d(dir_);
  const ResourceSpec v = vip_spec("127.0.100.1", "");
  EXPECT_EQ(d.run(OpKind::kProbe, v).outcome, OpOutcome::kNotRunning);
  const OpCompletion started = d.run(OpKind::kStart, v);
  EXPECT_EQ(started.outcome, OpOutcome::kOk);
  EXPECT_EQ(started.detail, "held here (loopback)");
  EXPECT_TRUE(fs::exists(loopback_vip_marker(dir_, "v")));
  EXPECT_EQ(d.run(OpKind::kMonitor, v).outcome, OpOutcome::kOk);
  EXPECT_EQ(d.run(OpKind::kProbe, v).outcome, OpOutcome::kOk);  // a restarted daemon adopts it
  EXPECT_EQ(d.run(OpKind::kStop, v).outcome, OpOutcome::kOk);
  EXPECT_FALSE(fs::exists(loopback_vip_marker(dir_, "v")));
  EXPECT_EQ(d.run(OpKind::kMonitor, v).outcome, OpOutcome::kNotRunning);
  EXPECT_EQ(d.run(OpKind::kStop, v).outcome, OpOutcome::kOk);  // twice is harmless
  EXPECT_EQ(d.run(OpKind::kPromote, v).detail, "a vip has no promoted role");
  EXPECT_EQ(d.run(OpKind::kNotify, v).detail, "a vip has no notify action");
}

// Gratuitous ARPs for 192.0.2.100 seen on `b` within `ms`.
int garps_seen(int fd, int ms) {
  int seen = 0;
  const int64_t until = mono_us() / 1000 + ms;
  while (mono_us() / 1000 < until) {
    const auto frame = capture(fd, static_cast<int>(until - mono_us() / 1000), [](const Frame& f) {
      if (f.size() < sizeof(ether_header) + sizeof(ether_arp)) return false;
      const auto* arp = reinterpret_cast<const ether_arp*>(f.data() + sizeof(ether_header));
      const uint8_t vip[4] = {192, 0, 2, 100};
      return ntohs(arp->ea_hdr.ar_op) == ARPOP_REQUEST && std::memcmp(arp->arp_spa, vip, 4) == 0 &&
             std::memcmp(arp->arp_tpa, vip, 4) == 0;
    });
    if (frame) ++seen;
  }
  return seen;
}

bool on(const std::string& iface, const std::string& address) {
  auto nl = Rtnetlink::open();
  auto i = (*nl)->interface(iface);
  auto a = parse_ip_address(address);
  auto has = (*nl)->has_address(*i, *a);
  return has.ok() && *has;
}

TEST_F(VipRunnerTest, StartsAnnouncesMonitorsAndStopsAnIpv4Vip) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([&] {
    Driver d(dir_);
    const ResourceSpec v = vip_spec("192.0.2.100", "a");
    auto nl = Rtnetlink::open();
    const int fd = open_capture(*(*nl)->interface("b"), ETH_P_ARP);
    EXPECT_EQ(d.run(OpKind::kProbe, v).outcome, OpOutcome::kNotRunning);
    const OpCompletion started = d.run(OpKind::kStart, v);
    EXPECT_EQ(started.outcome, OpOutcome::kOk) << started.detail;
    EXPECT_EQ(started.detail, "on a, announced");
    EXPECT_TRUE(on("a", "192.0.2.100"));
    EXPECT_EQ(garps_seen(fd, 50), 1);  // at once
    d.run_for(400);                    // then at 100 and 300 ms
    EXPECT_EQ(garps_seen(fd, 10), 2);
    EXPECT_EQ(d.run(OpKind::kMonitor, v).outcome, OpOutcome::kOk);
    EXPECT_EQ(d.run(OpKind::kStop, v).outcome, OpOutcome::kOk);
    EXPECT_FALSE(on("a", "192.0.2.100"));
    d.run_for(800);  // the announcements still due at 1 s are dropped
    EXPECT_EQ(garps_seen(fd, 10), 0);
    EXPECT_EQ(d.run(OpKind::kMonitor, v).outcome, OpOutcome::kNotRunning);
    EXPECT_EQ(d.run(OpKind::kStop, v).outcome, OpOutcome::kOk);
    ::close(fd);
  });
}

TEST_F(VipRunnerTest, AnAddressAnotherHostAnswersForIsNotTaken) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([&] {
    Driver d(dir_);
    // b stands for another host that holds the address.
    ASSERT_EQ(run_ip({"addr", "add", "192.0.2.100/24", "dev", "b"}), "");
    auto nl = Rtnetlink::open();
    const std::string b_mac = mac_to_string((*nl)->interface("b")->mac);
    const OpCompletion started = d.run(OpKind::kStart, vip_spec("192.0.2.100", "a"));
    EXPECT_EQ(started.outcome, OpOutcome::kFailed);
    EXPECT_EQ(started.detail, "192.0.2.100 is in use on a by " + b_mac + ": not taken");
    EXPECT_FALSE(on("a", "192.0.2.100"));
  });
}

TEST_F(VipRunnerTest, AnIpv6VipIsAnnouncedWithANeighbourAdvertisement) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([&] {
    Driver d(dir_);
    auto nl = Rtnetlink::open();
    const int fd = open_capture(*(*nl)->interface("b"), ETH_P_IPV6);
    const ResourceSpec v = vip_spec("2001:db8::100", "a");
    const OpCompletion started = d.run(OpKind::kStart, v);
    EXPECT_EQ(started.outcome, OpOutcome::kOk) << started.detail;
    EXPECT_TRUE(on("a", "2001:db8::100"));
    const auto na = capture(fd, 500, [](const Frame& f) {
      const std::size_t icmp = sizeof(ether_header) + sizeof(ip6_hdr);
      return f.size() >= icmp + sizeof(nd_neighbor_advert) &&
             f[sizeof(ether_header) + 6] == IPPROTO_ICMPV6 && f[icmp] == ND_NEIGHBOR_ADVERT;
    });
    EXPECT_TRUE(na.has_value());
    EXPECT_EQ(d.run(OpKind::kStop, v).outcome, OpOutcome::kOk);
    EXPECT_FALSE(on("a", "2001:db8::100"));
    ::close(fd);
  });
}

TEST_F(VipRunnerTest, AMissingOrDownInterfaceHoldsNothing) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([&] {
    Driver d(dir_);
    const ResourceSpec missing = vip_spec("192.0.2.100", "nosuch0");
    EXPECT_EQ(d.run(OpKind::kProbe, missing).outcome, OpOutcome::kNotRunning);
    const OpCompletion started = d.run(OpKind::kStart, missing);
    EXPECT_EQ(started.outcome, OpOutcome::kFailed);
    EXPECT_NE(started.detail.find("nosuch0"), std::string::npos) << started.detail;
    EXPECT_EQ(d.run(OpKind::kStop, missing).outcome, OpOutcome::kOk);
    ASSERT_EQ(run_ip({"link", "set", "dev", "a", "down"}), "");
    const OpCompletion down = d.run(OpKind::kStart, vip_spec("192.0.2.100", "a"));
    EXPECT_EQ(down.outcome, OpOutcome::kFailed);
    EXPECT_EQ(down.detail, "a is down");
  });
}

TEST_F(VipRunnerTest, AStartOfAnAddressAlreadyHereAnnouncesIt) {
  SKIP_UNLESS_PRIVATE_NETWORK();
  in_private_network([&] {
    Driver d(dir_);
    ASSERT_EQ(run_ip({"addr", "add", "192.0.2.100/24", "dev", "a"}), "");
    auto nl = Rtnetlink::open();
    const int fd = open_capture(*(*nl)->interface("b"), ETH_P_ARP);
    const ResourceSpec v = vip_spec("192.0.2.100", "a");
    EXPECT_EQ(d.run(OpKind::kProbe, v).outcome, OpOutcome::kOk);  // adopted after a restart
    const OpCompletion started = d.run(OpKind::kStart, v);
    EXPECT_EQ(started.outcome, OpOutcome::kOk);
    EXPECT_EQ(started.detail, "already on a; announced");
    EXPECT_EQ(garps_seen(fd, 50), 1);
    ::close(fd);
  });
}

}  // namespace
}  // namespace bulwark
