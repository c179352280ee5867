// Tests of the heartbeat state machine: several Membership instances wired
// together in memory under one fake clock, with links that can be cut and
// nodes that can fall silent. No sockets, no sleeps: time moves only when a
// test moves it.
#include "membership/membership.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/env.h"
#include "fake_clock.h"

namespace bulwark {
namespace {

constexpr int kHeartbeatMs = 50;
constexpr int kLeaseMs = 300;
constexpr int kPort = 7401;
const std::string kCluster = "demo";
const std::string kSecret = "test cluster secret";

using test_support::FakeClock;

// Three (or more) nodes on one in-memory network. Datagrams are delivered at
// once, to whichever node owns the datagram's address and port; a reply is
// delivered the same way.
class Network {
 public:
  explicit Network(const std::vector<std::string>& names) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      endpoints_.push_back(PeerEndpoint{
          .name = names[i], .address = "10.0.0." + std::to_string(i + 1), .port = kPort});
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
  // Restores the link between `a` and `b` only.
  void mend(const std::string& a, const std::string& b) {
    cut_.erase({a, b});
    cut_.erase({b, a});
  }
  // Drops each datagram with probability `percent`/100, from a seeded
  // generator so that a run replays exactly.
  void set_loss(int percent, uint32_t seed) {
    loss_percent_ = percent;
    loss_rng_.seed(seed);
  }

  void deliver(const std::string& from, const Datagram& d) {
    Node* to = nullptr;
    for (auto& n : nodes_) {
      if (n.endpoint.address == d.address && n.endpoint.port == d.port) to = &n;
    }
    ASSERT_NE(to, nullptr) << "datagram from " << from << " to unknown " << d.address << ":"
                           << d.port;
    ++sent_;
    if (to->silent || cut_.count({from, to->endpoint.name})) return;
    if (loss_percent_ > 0 && std::uniform_int_distribution<int>(0, 99)(loss_rng_) < loss_percent_)
      return;
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
  int loss_percent_ = 0;
  std::mt19937 loss_rng_;
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

// Lease bounds: what a node can prove about when another member last held the
// quorum lease (see "Lease bounds" in membership.h).
namespace bulwark {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::min();

MemberStatus status(Network& net, const std::string& observer, const std::string& member) {
  const MembershipView v = net.view(observer);
  const MemberStatus* m = v.find(member);
  EXPECT_NE(m, nullptr) << observer << " does not list " << member;
  return m == nullptr ? MemberStatus{} : *m;
}

std::span<const uint8_t> key_bytes() {
  return {reinterpret_cast<const uint8_t*>(kSecret.data()), kSecret.size()};
}

TEST(MembershipLeaseBoundTest, FollowsAnotherPeersAnswersAndStopsAtTheLast) {
  Network net({"a", "b", "x"});
  net.tick_all();
  net.run_until(1000);
  // a no longer reaches x, but b does: x keeps its lease through b, and a
  // learns of b's answers from b's pongs.
  net.cut("a", "x");
  for (const int64_t t : {1050, 1500, 2000}) {
    net.run_until(t);
    const MemberStatus x = status(net, "a", "x");
    // Nodes tick in the order a, b, x: a's ping of time t reaches b before
    // x's does, so b's report says it answered x one heartbeat ago.
    EXPECT_EQ(x.lease_bound_ms, t - kHeartbeatMs + kLeaseMs) << "t=" << t;
    EXPECT_EQ(x.answers_known_until_ms, t) << "b's report answers a's ping of t";
    EXPECT_FALSE(x.lease_lapse_proven()) << "t=" << t;
    EXPECT_TRUE(net.view("x").holds_lease) << "t=" << t;
  }

  // Now b stops answering x too. Its last answer, to x's ping of t=2000,
  // gives x its lease up to 2300; a hears of that answer with b's next pong
  // and its bound stops exactly there.
  net.cut("b", "x");
  constexpr int64_t kLastAnswerByBMs = 2000;
  constexpr int64_t kEndMs = kLastAnswerByBMs + kLeaseMs;
  EXPECT_EQ(status(net, "x", "x").lease_bound_ms, kEndMs) << "x's own lease ends then";
  net.run_until(kLastAnswerByBMs + kHeartbeatMs - 1);
  EXPECT_EQ(status(net, "a", "x").lease_bound_ms, kEndMs - kHeartbeatMs) << "not heard of yet";
  for (int64_t t = kLastAnswerByBMs + kHeartbeatMs; t <= 5000; ++t) {
    net.run_until(t);
    const MemberStatus x = status(net, "a", "x");
    ASSERT_EQ(x.lease_bound_ms, kEndMs) << "t=" << t;
    // a knows b's answers up to its own newest ping to b.
    ASSERT_EQ(x.answers_known_until_ms, t - t % kHeartbeatMs) << "t=" << t;
    ASSERT_EQ(x.lease_lapse_proven(), t >= kEndMs) << "t=" << t;
    ASSERT_EQ(net.view("x").holds_lease, t < kEndMs) << "t=" << t;
    ASSERT_TRUE(net.view("a").holds_lease) << "t=" << t;
  }
  // b's view of x is the same: its own last answer and a's reports.
  EXPECT_EQ(status(net, "b", "x").lease_bound_ms, kEndMs);
  EXPECT_TRUE(status(net, "b", "x").lease_lapse_proven());
}

// The reason for answers_known_until_ms: a bound built from a report that
// predates an answer is too early, even while the reporting peer still counts
// towards this node's own lease. Here x's lease never lapses, and a holds its
// lease through b the whole time, yet a's lease_bound_ms for x falls behind.
TEST(MembershipLeaseBoundTest, LeaseBoundAloneIsNoProofWhileAReportLags) {
  Network net({"a", "b", "x"});
  net.tick_all();
  net.run_until(1000);
  net.cut("a", "x");
  net.cut("b", "x");
  // x's ping of t=1000 was its last answered one: its lease runs to 1300.
  net.run_until(1249);
  net.mend("b", "x");
  // At t=1250 a's ping reaches b first: b reports its last answer to x at
  // 1000. Then x's ping reaches b, which answers: x's lease now runs to 1550,
  // without a gap. After that, a hears nothing more from b.
  net.run_until(1250);
  net.cut("a", "b");
  for (int64_t t = 1251; t < 1550; ++t) {
    net.run_until(t);
    const MemberStatus x = status(net, "a", "x");
    ASSERT_EQ(x.lease_bound_ms, 1000 + kLeaseMs) << "t=" << t;
    ASSERT_EQ(x.answers_known_until_ms, 1250) << "b's newest report answers a's ping of 1250";
    ASSERT_TRUE(net.view("a").holds_lease) << "t=" << t << ": through b's pong of 1250";
    ASSERT_TRUE(net.view("x").holds_lease) << "t=" << t;
    // From 1300 on, "now >= lease_bound_ms" would wrongly call x gone.
    ASSERT_FALSE(x.lease_lapse_proven()) << "t=" << t;
  }
  net.run_until(1550);
  EXPECT_FALSE(net.view("a").holds_lease);
  EXPECT_TRUE(net.view("x").holds_lease);
  EXPECT_FALSE(status(net, "a", "x").lease_lapse_proven());
}

// "node-522789" and "node-739192" have the same 32-bit FNV-1a hash.
TEST(MembershipLeaseBoundTest, HashCollisionCountsAsAnAnswerJustNow) {
  const std::string kTwin1 = "node-522789";
  const std::string kTwin2 = "node-739192";
  ASSERT_EQ(heartbeat_name_hash(kTwin1), heartbeat_name_hash(kTwin2));
  // The same schedule twice: x loses both its links at t=1000.
  // With distinct names a's bound for x is exact; when x's name collides
  // with the reporting peer's, a cannot tell whose answer the entry is about
  // and must assume x was answered when the report arrived.
  auto status_at_1500 = [](const std::string& x, const std::string& peer) {
    Network net({"a", peer, x});
    net.tick_all();
    net.run_until(1000);
    net.cut("a", x);
    net.cut(peer, x);
    net.run_until(1500);
    const MemberStatus m = status(net, "a", x);
    EXPECT_EQ(m.answers_known_until_ms, 1500) << x;
    return m;
  };
  const MemberStatus distinct = status_at_1500("x", "b");
  EXPECT_EQ(distinct.lease_bound_ms, 1000 + kLeaseMs);
  EXPECT_TRUE(distinct.lease_lapse_proven());
  const MemberStatus twin = status_at_1500(kTwin1, kTwin2);
  EXPECT_EQ(twin.lease_bound_ms, 1500 + kLeaseMs);
  EXPECT_FALSE(twin.lease_lapse_proven()) << "the price: never proven while the twin reports";
}

TEST_F(MembershipPairTest, PongReportsAgesOfOwnAnswersSaturating) {
  clock_.set_mono_ms(1000);
  auto pong = b_.receive(ping_a_to_b().bytes);
  ASSERT_TRUE(pong.has_value());
  auto hb = decode_heartbeat(pong->bytes, key_bytes());
  ASSERT_TRUE(hb.has_value());
  // Every member but the sender, by name: a was answered just now, c never,
  // so its age counts from when b learnt of it (t=0).
  ASSERT_EQ(hb->answers.size(), 2u);
  EXPECT_EQ(hb->answers[0].member_hash, heartbeat_name_hash("a"));
  EXPECT_EQ(hb->answers[0].age_ms, 0);
  EXPECT_EQ(hb->answers[1].member_hash, heartbeat_name_hash("c"));
  EXPECT_EQ(hb->answers[1].age_ms, 1000);

  clock_.set_mono_ms(100000);
  const Datagram ping = ping_a_to_b();
  pong = b_.receive(ping.bytes);
  ASSERT_TRUE(pong.has_value());
  hb = decode_heartbeat(pong->bytes, key_bytes());
  ASSERT_TRUE(hb.has_value());
  ASSERT_EQ(hb->answers.size(), 2u);
  EXPECT_EQ(hb->answers[0].age_ms, 0);
  EXPECT_EQ(hb->answers[1].age_ms, kAnswerAgeMaxMs) << "saturates";

  // Pings carry no report.
  const auto seen = decode_heartbeat(ping.bytes, key_bytes());
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(seen->answers.empty());
}

TEST_F(MembershipPairTest, ReportsAreReadConservatively) {
  // Pongs of b crafted by hand, to control their reports.
  auto pong_for = [&](const Datagram& ping, std::vector<AnswerReport> answers) {
    const auto seen = decode_heartbeat(ping.bytes, key_bytes());
    if (!seen) {
      ADD_FAILURE() << "a's ping does not decode";
      return std::vector<uint8_t>{};
    }
    Heartbeat pong;
    pong.type = HeartbeatType::kPong;
    pong.incarnation = 222;
    pong.seq = seen->seq;
    pong.echo_incarnation = seen->incarnation;
    pong.echo_seq = seen->seq;
    pong.cluster = kCluster;
    pong.sender = "b";
    pong.receiver = "a";
    pong.answers = std::move(answers);
    return encode_heartbeat(pong, key_bytes());
  };
  const uint32_t c = heartbeat_name_hash("c");

  clock_.set_mono_ms(1000);
  const Datagram first = ping_a_to_b();
  clock_.set_mono_ms(1050);
  const Datagram second = ping_a_to_b();

  // The newer pong arrives first. c named twice: the later answer counts.
  // Entries about a stranger, about a itself and about the sender change
  // nothing.
  clock_.set_mono_ms(1060);
  EXPECT_FALSE(a_.receive(pong_for(second, {{c, 500},
                                            {heartbeat_name_hash("stranger"), 0},
                                            {c, 40},
                                            {heartbeat_name_hash("a"), 0},
                                            {heartbeat_name_hash("b"), 0}}))
                   .has_value());
  MembershipView v = a_.view();
  EXPECT_EQ(v.rejected_datagrams, 0u);
  EXPECT_EQ(v.find("c")->lease_bound_ms, 1060 - 40 + kLeaseMs);
  // a knows its own answers up to now, b's up to its ping of 1050.
  EXPECT_EQ(v.find("c")->answers_known_until_ms, 1050);
  EXPECT_EQ(v.find("b")->lease_bound_ms, 0 + kLeaseMs) << "b became a member at t=0";
  EXPECT_EQ(v.find("b")->answers_known_until_ms, kNever) << "c has reported nothing on b";

  // The older pong arrives late, with an older report: it moves nothing back.
  clock_.set_mono_ms(1070);
  EXPECT_FALSE(a_.receive(pong_for(first, {{c, 100}})).has_value());
  v = a_.view();
  EXPECT_EQ(v.rejected_datagrams, 0u);
  EXPECT_EQ(v.find("c")->lease_bound_ms, 1020 + kLeaseMs);
  EXPECT_EQ(v.find("c")->answers_known_until_ms, 1050);

  // A saturated age means "at least that long ago"; it never moves the bound
  // back either.
  clock_.set_mono_ms(1100);
  const Datagram third = ping_a_to_b();
  EXPECT_FALSE(a_.receive(pong_for(third, {{c, kAnswerAgeMaxMs}})).has_value());
  v = a_.view();
  EXPECT_EQ(v.find("c")->lease_bound_ms, 1020 + kLeaseMs);
  EXPECT_EQ(v.find("c")->answers_known_until_ms, 1100);
  EXPECT_FALSE(v.find("c")->lease_lapse_proven());

  // A report in a pong that does not count (a replay) is not read.
  clock_.set_mono_ms(2000);
  EXPECT_FALSE(a_.receive(pong_for(third, {{c, 0}})).has_value());
  v = a_.view();
  EXPECT_EQ(v.rejected_datagrams, 1u);
  EXPECT_EQ(v.find("c")->lease_bound_ms, 1020 + kLeaseMs);
}

TEST_F(MembershipPairTest, MembersAddedLaterStartWithAConservativeBound) {
  // a has answered nobody. A member known since t=0 may have been answered
  // just before a started; one added at 2000 may have been answered by an
  // earlier run of a just before 2000.
  clock_.set_mono_ms(2000);
  auto with_d = members_;
  with_d.push_back({"d", "10.0.0.4", kPort});
  a_.set_members(with_d);
  MembershipView v = a_.view();
  EXPECT_EQ(v.find("c")->lease_bound_ms, 0 + kLeaseMs) << "set_members again keeps what it knew";
  EXPECT_EQ(v.find("d")->lease_bound_ms, 2000 + kLeaseMs);
  EXPECT_EQ(v.find("d")->answers_known_until_ms, kNever) << "no peer has reported on d";

  // Removed and added again, c starts afresh too.
  clock_.set_mono_ms(3000);
  a_.set_members({{"a", "10.0.0.1", kPort}, {"b", "10.0.0.2", kPort}, {"d", "10.0.0.4", kPort}});
  clock_.set_mono_ms(4000);
  a_.set_members(with_d);
  EXPECT_EQ(a_.view().find("c")->lease_bound_ms, 4000 + kLeaseMs);
}

TEST(MembershipLeaseBoundTest, OwnBoundIsOwnLease) {
  FakeClock clock;
  clock.set_mono_ms(500);
  Membership solo(clock, kCluster, "a", kSecret, kHeartbeatMs, kLeaseMs, 1);
  solo.set_members({{"a", "10.0.0.1", kPort}});
  MemberStatus self = solo.view().members.at(0);
  EXPECT_EQ(self.lease_bound_ms, std::numeric_limits<int64_t>::max()) << "one-node cluster";
  EXPECT_EQ(self.answers_known_until_ms, 500);
  EXPECT_FALSE(self.lease_lapse_proven());

  Network net({"a", "b", "c"});
  EXPECT_EQ(status(net, "a", "a").lease_bound_ms, kNever) << "no lease yet";
  EXPECT_TRUE(status(net, "a", "a").lease_lapse_proven());
  net.tick_all();
  net.run_until(1000);
  self = status(net, "a", "a");
  EXPECT_EQ(self.lease_bound_ms, 1000 + kLeaseMs);
  EXPECT_EQ(self.answers_known_until_ms, 1000);
  EXPECT_FALSE(self.lease_lapse_proven());
}

TEST(MembershipLeaseBoundTest, SixteenNodesWithLongNamesStayUnderTheDatagramLimit) {
  FakeClock clock;
  const std::string cluster(63, 'k');
  std::vector<PeerEndpoint> members;
  for (int i = 0; i < 16; ++i) {
    // 63 characters, distinct in the last two.
    const std::string suffix = (i < 10 ? "0" : "") + std::to_string(i);
    members.push_back({std::string(61, 'n') + suffix, "10.0.1." + std::to_string(i + 1), kPort});
  }
  Membership first(clock, cluster, members[0].name, kSecret, kHeartbeatMs, kLeaseMs, 1);
  Membership second(clock, cluster, members[1].name, kSecret, kHeartbeatMs, kLeaseMs, 2);
  first.set_members(members);
  second.set_members(members);
  const auto pings = first.tick();
  ASSERT_EQ(pings.size(), 15u);
  const auto pong = second.receive(pings[0].bytes);
  ASSERT_TRUE(pong.has_value());
  // 40 fixed bytes, three 63-byte strings, a report on 15 members, the tag.
  EXPECT_EQ(pong->bytes.size(), 40u + 3 * (1 + 63) + (1 + 15 * 6) + 32);
  EXPECT_LE(pong->bytes.size(), kHeartbeatMaxBytes);
  const auto hb = decode_heartbeat(pong->bytes, key_bytes());
  ASSERT_TRUE(hb.has_value());
  EXPECT_EQ(hb->answers.size(), 15u);
  EXPECT_FALSE(first.receive(pong->bytes).has_value());
  EXPECT_EQ(first.view().rejected_datagrams, 0u);
}

// Random partitions, pauses and losses; after every millisecond, every proof
// of a lapse any node makes is checked against the lease each node actually
// held. A failing seed is printed and replays exactly.
void check_lapse_proofs_on_random_schedule(const std::vector<std::string>& names, uint32_t seed,
                                           int64_t duration_ms) {
  SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(names.size()) + " nodes");
  constexpr int64_t kEventEveryMs = 100;
  constexpr int kLossPercent = 10;
  Network net(names);
  net.set_loss(kLossPercent, seed);
  std::mt19937 rng(seed);
  auto any = [&] {
    return names[std::uniform_int_distribution<std::size_t>(0, names.size() - 1)(rng)];
  };
  // held_before[x][k]: in how many of the milliseconds 0 .. k-1 x held its
  // lease (as it stood at the end of that millisecond).
  std::map<std::string, std::vector<int64_t>> held_before;
  for (const auto& n : names) held_before[n] = {0};
  int proofs = 0;
  net.tick_all();
  for (int64_t t = 0; t <= duration_ms; ++t) {
    if (t > 0 && t % kEventEveryMs == 0) {
      switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
        case 0:
          net.cut(any(), any());
          break;
        case 1:
          net.mend(any(), any());
          break;
        case 2:
          net.set_silent(any(), std::uniform_int_distribution<int>(0, 1)(rng) == 1);
          break;
        default:
          net.heal();
          break;
      }
    }
    net.run_until(t);
    std::vector<MembershipView> views;
    for (const auto& n : names) {
      views.push_back(net.view(n));
      auto& h = held_before[n];
      h.push_back(h.back() + (views.back().holds_lease ? 1 : 0));
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      for (const MemberStatus& x : views[i].members) {
        if (!x.lease_lapse_proven() || x.self) continue;
        ++proofs;
        // Whole milliseconds strictly before answers_known_until_ms: within
        // its last one the member may take a new lease after the report.
        const int64_t from = x.lease_bound_ms;
        const int64_t to = x.answers_known_until_ms;  // exclusive
        if (from >= to) continue;
        ASSERT_GE(from, 0);
        ASSERT_LE(to, t);
        const auto& h = held_before[x.name];
        ASSERT_EQ(h[to] - h[from], 0) << names[i] << " proved at t=" << t << " that " << x.name
                                      << " held no lease in [" << from << ", " << to << ")";
      }
    }
  }
  EXPECT_GT(proofs, 0) << "the schedule never made a node unreachable long enough";
}

// Under the sanitizers (40 times slower here) one seed looks for memory
// errors; the optimised build runs all three for the schedules.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint32_t kLapseSeeds = 1;
#else
constexpr uint32_t kLapseSeeds = 3;
#endif

TEST(MembershipLeaseBoundTest, RandomSchedulesNeverProveALapseOfAHeldLease) {
  for (uint32_t seed = 1; seed <= kLapseSeeds; ++seed) {
    check_lapse_proofs_on_random_schedule({"a", "b", "c"}, seed, 10000);
    check_lapse_proofs_on_random_schedule({"a", "b", "c", "d", "e"}, seed, 10000);
    check_lapse_proofs_on_random_schedule({"a", "b", "c", "d"}, seed, 10000);
  }
}

}  // namespace
}  // namespace bulwark
