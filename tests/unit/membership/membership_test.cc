// Tests of the heartbeat state machine: several Membership instances wired
// together in memory under one fake clock, with links that can be cut and
// nodes that can fall silent. No sockets, no sleeps: time moves only when a
// test moves it.
#include "membership/membership.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/env.h"

namespace bulwark {
namespace {

constexpr int kHeartbeatMs = 50;
constexpr int kLeaseMs = 300;
constexpr int kPort = 7401;
const std::string kCluster = "demo";
const std::string kSecret = "test cluster secret";

class FakeClock : public Clock {
 public:
  int64_t mono_ms() const override { return mono_ms_; }
  int64_t wall_ms() const override { return wall_ms_; }
  void set_mono_ms(int64_t t) { mono_ms_ = t; }
  void set_wall_ms(int64_t t) { wall_ms_ = t; }

 private:
  int64_t mono_ms_ = 0;
  int64_t wall_ms_ = 1700000000000;
};

// Three (or more) nodes on one in-memory network. Datagrams are delivered at
// once, to whichever node owns the datagram's address and port; a reply is
// delivered the same way.
class Network {
 public:
  explicit Network(const std::vector<std::string>& names) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      endpoints_.push_back(PeerEndpoint{names[i], "10.0.0." + std::to_string(i + 1), kPort});
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      Node n;
      n.endpoint = endpoints_[i];
      n.membership = std::make_unique<Membership>(clock_, kCluster, names[i], kSecret, kHeartbeatMs,
                                                  kLeaseMs, /*incarnation=*/1000 + i);
      n.membership->set_members(endpoints_);
      nodes_.push_back(std::move(n));
    }
  }

  FakeClock& clock() { return clock_; }
  int64_t now() const { return clock_.mono_ms(); }
  Membership& node(const std::string& name) { return *find(name)->membership; }
  MembershipView view(const std::string& name) { return node(name).view(); }

  // A silent node neither ticks nor answers, like a paused process.
  void set_silent(const std::string& name, bool silent) { find(name)->silent = silent; }
  // Drops every datagram between `a` and `b`, both directions.
  void cut(const std::string& a, const std::string& b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void heal() { cut_.clear(); }

  void deliver(const std::string& from, const Datagram& d) {
    Node* to = nullptr;
    for (auto& n : nodes_) {
      if (n.endpoint.address == d.address && n.endpoint.port == d.port) to = &n;
    }
    ASSERT_NE(to, nullptr) << "datagram from " << from << " to unknown " << d.address << ":"
                           << d.port;
    ++sent_;
    if (to->silent || cut_.count({from, to->endpoint.name})) return;
    const auto reply = to->membership->receive(d.bytes);
    if (reply) deliver(to->endpoint.name, *reply);
  }

  void tick_all() {
    for (auto& n : nodes_) {
      if (n.silent) continue;
      for (const auto& d : n.membership->tick()) deliver(n.endpoint.name, d);
    }
  }

  // Advances time one millisecond at a time, ticking every node at each step
  // (a tick before next_tick_ms does nothing, as in MembershipService).
  void run_until(int64_t t_ms) {
    while (now() < t_ms) {
      clock_.set_mono_ms(now() + 1);
      tick_all();
    }
  }

  int sent() const { return sent_; }

 private:
  struct Node {
    PeerEndpoint endpoint;
    std::unique_ptr<Membership> membership;
    bool silent = false;
  };
  Node* find(const std::string& name) {
    for (auto& n : nodes_) {
      if (n.endpoint.name == name) return &n;
    }
    ADD_FAILURE() << "no node " << name;
    return &nodes_.front();
  }

  FakeClock clock_;
  std::vector<PeerEndpoint> endpoints_;
  std::vector<Node> nodes_;
  std::set<std::pair<std::string, std::string>> cut_;
  int sent_ = 0;
};

bool online_in(const MembershipView& v, const std::string& name) {
  const MemberStatus* m = v.find(name);
  EXPECT_NE(m, nullptr) << name;
  return m != nullptr && m->online;
}

TEST(MembershipTest, NobodyHoldsTheLeaseBeforeAnyExchange) {
  Network net({"a", "b", "c"});
  for (const char* n : {"a", "b", "c"}) {
    const MembershipView v = net.view(n);
    EXPECT_TRUE(v.is_member);
    EXPECT_FALSE(v.holds_lease) << n;
    EXPECT_EQ(v.lease_remaining_ms, 0);
    EXPECT_EQ(v.majority, 2);
    EXPECT_TRUE(v.reachable.empty());
    ASSERT_EQ(v.members.size(), 3u);
    for (const auto& m : v.members) {
      EXPECT_EQ(m.self, m.name == n);
      EXPECT_EQ(m.online, m.name == n) << "before any round trip only self is online";
      EXPECT_EQ(m.last_contact_ago_ms, m.name == n ? 0 : -1);
    }
  }
}

TEST(MembershipTest, HealthyClusterHoldsTheLeaseEverywhere) {
  Network net({"a", "b", "c"});
  net.tick_all();
  for (const char* n : {"a", "b", "c"}) {
    const MembershipView v = net.view(n);
    EXPECT_TRUE(v.holds_lease) << n;
    EXPECT_EQ(v.lease_remaining_ms, kLeaseMs) << n;
    EXPECT_EQ(v.reachable.size(), 2u) << n;
    EXPECT_EQ(v.rejected_datagrams, 0u) << n;
  }
  net.run_until(1000);
  for (const char* n : {"a", "b", "c"}) {
    const MembershipView v = net.view(n);
    EXPECT_TRUE(v.holds_lease) << n;
    EXPECT_EQ(v.rejected_datagrams, 0u) << n;
    for (const auto& m : v.members) {
      EXPECT_TRUE(m.online) << n << " sees " << m.name;
      if (m.self) continue;
      EXPECT_EQ(m.last_contact_ago_ms, 0) << "a round trip completed at t=1000";
      EXPECT_EQ(m.rtt_ms, 0) << "delivery is instant here";
      EXPECT_TRUE(m.peer_holds_lease) << n << " about " << m.name;
    }
  }
  // 21 ticks (0, 50, ..., 1000) x 3 nodes x 2 peers, a ping and a pong each.
  EXPECT_EQ(net.sent(), 21 * 3 * 2 * 2);
}

TEST(MembershipTest, TickRunsOncePerHeartbeat) {
  Network net({"a", "b", "c"});
  Membership& a = net.node("a");
  const auto first = a.tick();
  ASSERT_EQ(first.size(), 2u);
  // Pings go to the configured addresses of the peers.
  EXPECT_EQ(first[0].address, "10.0.0.2");
  EXPECT_EQ(first[1].address, "10.0.0.3");
  EXPECT_EQ(first[0].port, kPort);
  EXPECT_EQ(a.next_tick_ms(), kHeartbeatMs);
  net.clock().set_mono_ms(kHeartbeatMs - 1);
  EXPECT_TRUE(a.tick().empty());
  net.clock().set_mono_ms(kHeartbeatMs);
  EXPECT_EQ(a.tick().size(), 2u);
  EXPECT_EQ(a.next_tick_ms(), 2 * kHeartbeatMs);
}

TEST(MembershipTest, SilentNodeGoesOfflineAfterTheLeaseWhileOthersKeepIt) {
  Network net({"a", "b", "c"});
  net.tick_all();
  net.run_until(1000);
  // c's last answered pings left at t=1000.
  net.set_silent("c", true);

  net.run_until(1299);
  EXPECT_TRUE(online_in(net.view("a"), "c"));
  EXPECT_TRUE(online_in(net.view("b"), "c"));

  net.run_until(1300);
  for (const char* n : {"a", "b"}) {
    const MembershipView v = net.view(n);
    EXPECT_TRUE(v.holds_lease) << n << " still has 2 of 3";
    EXPECT_FALSE(online_in(v, "c")) << n;
    EXPECT_EQ(v.find("c")->last_contact_ago_ms, 300);
    EXPECT_EQ(v.reachable, (std::vector<std::string>{n == std::string("a") ? "b" : "a"}));
  }

  net.run_until(5000);
  EXPECT_TRUE(net.view("a").holds_lease);
  EXPECT_TRUE(net.view("b").holds_lease);
  EXPECT_EQ(net.view("a").find("c")->last_contact_ago_ms, 4000);

  // When c answers again, it is back within one heartbeat.
  net.set_silent("c", false);
  net.run_until(5050);
  EXPECT_TRUE(online_in(net.view("a"), "c"));
  EXPECT_TRUE(net.view("c").holds_lease);
}

TEST(MembershipTest, PartitionedNodeLosesTheLeaseExactlyWhenItExpires) {
  Network net({"a", "b", "c"});
  net.tick_all();
  net.run_until(1000);
  // The round trips of t=1000 completed; from now on c is cut off.
  net.cut("c", "a");
  net.cut("c", "b");

  net.run_until(1299);
  MembershipView c = net.view("c");
  EXPECT_TRUE(c.holds_lease) << "held until ping time + lease";
  EXPECT_EQ(c.lease_remaining_ms, 1);

  net.run_until(1300);
  c = net.view("c");
  EXPECT_FALSE(c.holds_lease) << "not held at ping time + lease";
  EXPECT_EQ(c.lease_remaining_ms, 0);
  EXPECT_TRUE(c.reachable.empty());
  EXPECT_FALSE(online_in(c, "a"));
  EXPECT_FALSE(online_in(c, "b"));

  // The majority side keeps the lease and sees c leave at the same moment.
  for (const char* n : {"a", "b"}) {
    const MembershipView v = net.view(n);
    EXPECT_TRUE(v.holds_lease) << n;
    EXPECT_FALSE(online_in(v, "c")) << n;
  }

  net.run_until(3000);
  EXPECT_FALSE(net.view("c").holds_lease);
  EXPECT_EQ(net.view("c").rejected_datagrams, 0u) << "dropped datagrams are not rejections";

  net.heal();
  net.run_until(3050);
  EXPECT_TRUE(net.view("c").holds_lease);
}

TEST(MembershipTest, TwoSilentPeersCostTheLease) {
  Network net({"a", "b", "c"});
  net.tick_all();
  net.run_until(500);
  net.set_silent("b", true);
  net.set_silent("c", true);
  net.run_until(799);
  EXPECT_TRUE(net.view("a").holds_lease);
  net.run_until(800);
  EXPECT_FALSE(net.view("a").holds_lease);
}

// Two instances driven by hand, to inspect single datagrams.
class MembershipPairTest : public ::testing::Test {
 protected:
  MembershipPairTest()
      : a_(clock_, kCluster, "a", kSecret, kHeartbeatMs, kLeaseMs, 111),
        b_(clock_, kCluster, "b", kSecret, kHeartbeatMs, kLeaseMs, 222) {
    a_.set_members(members_);
    b_.set_members(members_);
  }

  // a's ping to b, sent now.
  Datagram ping_a_to_b() {
    for (auto& d : a_.tick()) {
      if (d.address == "10.0.0.2") return d;
    }
    ADD_FAILURE() << "a sent no ping to b";
    return {};
  }

  FakeClock clock_;
  const std::vector<PeerEndpoint> members_ = {
      {"a", "10.0.0.1", kPort}, {"b", "10.0.0.2", kPort}, {"c", "10.0.0.3", kPort}};
  Membership a_;
  Membership b_;
};

TEST_F(MembershipPairTest, ReplayedPongCountsOnce) {
  const Datagram ping = ping_a_to_b();
  const auto pong = b_.receive(ping.bytes);
  ASSERT_TRUE(pong.has_value());

  clock_.set_mono_ms(10);
  EXPECT_FALSE(a_.receive(pong->bytes).has_value()) << "a pong is never answered";
  MembershipView v = a_.view();
  EXPECT_TRUE(v.holds_lease);
  EXPECT_EQ(v.rejected_datagrams, 0u);
  EXPECT_EQ(v.find("b")->rtt_ms, 10);

  clock_.set_mono_ms(20);
  EXPECT_FALSE(a_.receive(pong->bytes).has_value());
  v = a_.view();
  EXPECT_EQ(v.rejected_datagrams, 1u);
  EXPECT_EQ(v.find("b")->rtt_ms, 10) << "the replay must not count as a second round trip";

  // Replayed to a later run of a (another incarnation), it counts neither,
  // even though that run's first ping to b has the same seq.
  Membership a2(clock_, kCluster, "a", kSecret, kHeartbeatMs, kLeaseMs, 333);
  a2.set_members(members_);
  ASSERT_EQ(a2.tick().size(), 2u);
  EXPECT_FALSE(a2.receive(pong->bytes).has_value());
  EXPECT_FALSE(a2.view().holds_lease);
  EXPECT_EQ(a2.view().rejected_datagrams, 1u);
}

TEST_F(MembershipPairTest, WrongSecretIsRejectedAndCounted) {
  Membership intruder(clock_, kCluster, "a", "not the secret", kHeartbeatMs, kLeaseMs, 111);
  intruder.set_members(members_);
  for (const auto& d : intruder.tick()) {
    if (d.address == "10.0.0.2") {
      EXPECT_FALSE(b_.receive(d.bytes).has_value());
    }
  }
  EXPECT_EQ(b_.view().rejected_datagrams, 1u);

  // A pong under the wrong key does not give a the lease either.
  const Datagram ping = ping_a_to_b();
  Membership fake_b(clock_, kCluster, "b", "not the secret", kHeartbeatMs, kLeaseMs, 222);
  fake_b.set_members(members_);
  EXPECT_FALSE(fake_b.receive(ping.bytes).has_value());
  EXPECT_EQ(fake_b.view().rejected_datagrams, 1u);
  EXPECT_FALSE(a_.view().holds_lease);
}

TEST_F(MembershipPairTest, StrangersAndMisaddressedDatagramsAreRejected) {
  // Authentic, but from a node that is not a member.
  Membership d(clock_, kCluster, "d", kSecret, kHeartbeatMs, kLeaseMs, 444);
  d.set_members({{"b", "10.0.0.2", kPort}, {"d", "10.0.0.4", kPort}});
  const auto from_d = d.tick();
  ASSERT_EQ(from_d.size(), 1u);
  EXPECT_FALSE(b_.receive(from_d[0].bytes).has_value());
  EXPECT_EQ(b_.view().rejected_datagrams, 1u);

  // Authentic, but for another cluster that shares the secret.
  Membership other(clock_, "other", "a", kSecret, kHeartbeatMs, kLeaseMs, 555);
  other.set_members(members_);
  EXPECT_FALSE(b_.receive(other.tick()[0].bytes).has_value());
  EXPECT_EQ(b_.view().rejected_datagrams, 2u);

  // a's ping to c, delivered to b.
  const auto pings = a_.tick();
  ASSERT_EQ(pings.size(), 2u);
  ASSERT_EQ(pings[1].address, "10.0.0.3");
  EXPECT_FALSE(b_.receive(pings[1].bytes).has_value());
  EXPECT_EQ(b_.view().rejected_datagrams, 3u);

  // Garbage.
  const std::vector<uint8_t> junk(100, 0x42);
  EXPECT_FALSE(b_.receive(junk).has_value());
  EXPECT_EQ(b_.view().rejected_datagrams, 4u);

  // And a genuine ping is still answered.
  EXPECT_TRUE(b_.receive(pings[0].bytes).has_value());
}

TEST_F(MembershipPairTest, PongForAPingOlderThanTheLeaseIsRejected) {
  const Datagram ping = ping_a_to_b();  // leaves at t=0
  const auto pong = b_.receive(ping.bytes);
  ASSERT_TRUE(pong.has_value());

  // The pong is held up in the network past the lease; meanwhile a keeps
  // ticking, as its service loop does.
  clock_.set_mono_ms(kLeaseMs + 1);
  a_.tick();
  EXPECT_FALSE(a_.receive(pong->bytes).has_value());
  const MembershipView v = a_.view();
  EXPECT_EQ(v.rejected_datagrams, 1u);
  EXPECT_FALSE(v.holds_lease);
  EXPECT_EQ(v.find("b")->last_contact_ago_ms, -1) << "the stale round trip must not be recorded";
  EXPECT_EQ(v.find("b")->rtt_ms, -1);
}

TEST_F(MembershipPairTest, PongOfAPingStillInsideTheLeaseCounts) {
  // The contrast to the test above: a slow pong whose ping is not yet a
  // lease old still counts, and the lease runs from the ping's departure.
  const Datagram ping = ping_a_to_b();
  const auto pong = b_.receive(ping.bytes);
  ASSERT_TRUE(pong.has_value());
  clock_.set_mono_ms(kLeaseMs - 1);
  a_.tick();
  EXPECT_FALSE(a_.receive(pong->bytes).has_value());
  const MembershipView v = a_.view();
  EXPECT_EQ(v.rejected_datagrams, 0u);
  EXPECT_TRUE(v.holds_lease);
  EXPECT_EQ(v.lease_remaining_ms, 1);
  EXPECT_EQ(v.find("b")->rtt_ms, kLeaseMs - 1);
}

TEST_F(MembershipPairTest, PongMustComeFromThePingedPeer) {
  // c holds the secret and echoes a's ping to b, as a confused or malicious
  // member might: it must not count as a round trip with anybody.
  const Datagram ping = ping_a_to_b();
  const std::span<const uint8_t> key(reinterpret_cast<const uint8_t*>(kSecret.data()),
                                     kSecret.size());
  const auto seen = decode_heartbeat(ping.bytes, key);
  ASSERT_TRUE(seen.has_value());
  Heartbeat pong;
  pong.type = HeartbeatType::kPong;
  pong.incarnation = 999;
  pong.seq = 1;
  pong.echo_incarnation = seen->incarnation;
  pong.echo_seq = seen->seq;
  pong.cluster = kCluster;
  pong.sender = "c";
  pong.receiver = "a";
  EXPECT_FALSE(a_.receive(encode_heartbeat(pong, key)).has_value());
  MembershipView v = a_.view();
  EXPECT_EQ(v.rejected_datagrams, 1u);
  EXPECT_FALSE(v.holds_lease);
  EXPECT_EQ(v.find("c")->rtt_ms, -1);

  // The same echo from b is the genuine answer.
  pong.sender = "b";
  EXPECT_FALSE(a_.receive(encode_heartbeat(pong, key)).has_value());
  v = a_.view();
  EXPECT_EQ(v.rejected_datagrams, 1u);
  EXPECT_TRUE(v.holds_lease);
}

TEST_F(MembershipPairTest, PongGoesToTheConfiguredAddressOfTheSender) {
  // b knows a at an address and port that differ from the ones a believes it
  // has; the answer follows b's configuration, never anything in the ping.
  b_.set_members({{"a", "192.0.2.10", 9001}, {"b", "10.0.0.2", kPort}, {"c", "10.0.0.3", kPort}});
  const Datagram ping = ping_a_to_b();
  const auto pong = b_.receive(ping.bytes);
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->address, "192.0.2.10");
  EXPECT_EQ(pong->port, 9001);
  // And it is a pong a accepts.
  EXPECT_FALSE(a_.receive(pong->bytes).has_value());
  EXPECT_TRUE(a_.view().holds_lease);
}

TEST_F(MembershipPairTest, RemovedMemberIsNoLongerPingedNorAnswered) {
  const Datagram ping = ping_a_to_b();
  b_.set_members({{"b", "10.0.0.2", kPort}, {"c", "10.0.0.3", kPort}});
  EXPECT_FALSE(b_.receive(ping.bytes).has_value());
  EXPECT_EQ(b_.view().rejected_datagrams, 1u);
  const auto pings = b_.tick();
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(pings[0].address, "10.0.0.3");
  EXPECT_EQ(b_.view().find("a"), nullptr);
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

// Every node watches the coordinator c. When only the a-c link is cut, b
// still reports reaching c, so a can tell that c is alive; when c goes
// silent, b stops reporting it within a lease.
TEST(MembershipTest, PeersReportWhetherTheyReachTheWatchedNode) {
  Network net({"a", "b", "c"});
  for (const char* n : {"a", "b", "c"}) net.node(n).set_watched("c");
  net.tick_all();
  net.run_until(1000);
  EXPECT_TRUE(net.view("a").find("b")->peer_sees_watched);
  EXPECT_TRUE(net.view("a").find("c")->peer_sees_watched) << "c reports itself";
  net.cut("a", "c");
  net.run_until(1400);
  const MembershipView cut = net.view("a");
  EXPECT_FALSE(online_in(cut, "c"));
  EXPECT_TRUE(cut.find("b")->peer_sees_watched) << "b still reaches c";
  net.heal();
  net.set_silent("c", true);
  net.run_until(2000);
  EXPECT_FALSE(net.view("a").find("b")->peer_sees_watched) << "nobody reaches a silent c";
}

}  // namespace
}  // namespace bulwark
