// Tests of the quorum lease arithmetic: who counts, for how long, and how the
// expiry follows the k-th newest round trip.
#include "membership/quorum_lease.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

namespace bulwark {
namespace {

constexpr int64_t kLeaseMs = 300;
constexpr int64_t kNever = std::numeric_limits<int64_t>::min();
constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

QuorumLease make_lease(const std::set<std::string>& members, const std::string& self = "a") {
  QuorumLease lease(kLeaseMs);
  lease.set_members(members, self);
  return lease;
}

TEST(QuorumLeaseTest, NoRoundTripsMeansNotHeld) {
  const QuorumLease lease = make_lease({"a", "b", "c"});
  EXPECT_TRUE(lease.is_member());
  EXPECT_EQ(lease.majority(), 2);
  EXPECT_FALSE(lease.holds(0));
  EXPECT_FALSE(lease.holds(1000));
  EXPECT_EQ(lease.expires_ms(), kNever);
  EXPECT_TRUE(lease.reachable(0).empty());
  EXPECT_EQ(lease.last_round_trip_ms("b"), -1);
}

TEST(QuorumLeaseTest, OneRoundTripHoldsForExactlyTheLease) {
  QuorumLease lease = make_lease({"a", "b", "c"});
  lease.on_round_trip("b", 1000);
  EXPECT_EQ(lease.expires_ms(), 1000 + kLeaseMs);
  EXPECT_TRUE(lease.holds(1000));
  EXPECT_TRUE(lease.holds(1150));
  EXPECT_TRUE(lease.holds(1299));
  EXPECT_FALSE(lease.holds(1300));
  EXPECT_FALSE(lease.holds(5000));
  EXPECT_EQ(lease.last_round_trip_ms("b"), 1000);
}

TEST(QuorumLeaseTest, MajorityOfOneToFiveMembers) {
  const std::vector<std::string> names = {"a", "b", "c", "d", "e"};
  const int expected[] = {0, 1, 2, 2, 3, 3};
  std::set<std::string> members;
  for (std::size_t n = 1; n <= names.size(); ++n) {
    members.insert(names[n - 1]);
    const QuorumLease lease = make_lease(members);
    EXPECT_EQ(lease.majority(), expected[n]) << n << " members";
  }
}

TEST(QuorumLeaseTest, PeersNeededGrowWithTheCluster) {
  // With n members, majority-1 peers must have answered: 2 members need 1
  // peer, 4 members need 2.
  QuorumLease two = make_lease({"a", "b"});
  EXPECT_FALSE(two.holds(0));
  two.on_round_trip("b", 0);
  EXPECT_TRUE(two.holds(0));

  QuorumLease four = make_lease({"a", "b", "c", "d"});
  four.on_round_trip("b", 0);
  EXPECT_FALSE(four.holds(0));
  four.on_round_trip("d", 0);
  EXPECT_TRUE(four.holds(0));
}

TEST(QuorumLeaseTest, SingleMemberAlwaysHolds) {
  const QuorumLease lease = make_lease({"a"});
  EXPECT_EQ(lease.majority(), 1);
  EXPECT_EQ(lease.expires_ms(), kForever);
  EXPECT_TRUE(lease.holds(0));
  EXPECT_TRUE(lease.holds(std::numeric_limits<int64_t>::max() - 1));
}

TEST(QuorumLeaseTest, NonMemberNeverHolds) {
  // "z" watches a three-node cluster it is not part of: even with round
  // trips from every member it must not count itself.
  QuorumLease lease = make_lease({"a", "b", "c"}, "z");
  EXPECT_FALSE(lease.is_member());
  lease.on_round_trip("a", 1000);
  lease.on_round_trip("b", 1000);
  lease.on_round_trip("c", 1000);
  EXPECT_EQ(lease.expires_ms(), kNever);
  EXPECT_FALSE(lease.holds(1000));

  // Not even the trivial majority of a one-node cluster.
  const QuorumLease single = make_lease({"a"}, "z");
  EXPECT_FALSE(single.holds(0));
}

TEST(QuorumLeaseTest, RoundTripsFromNonMembersAreIgnored) {
  QuorumLease lease = make_lease({"a", "b", "c"});
  lease.on_round_trip("x", 1000);
  lease.on_round_trip("a", 1000);  // self does not count as a peer either
  EXPECT_FALSE(lease.holds(1000));
  EXPECT_EQ(lease.last_round_trip_ms("x"), -1);
  EXPECT_EQ(lease.last_round_trip_ms("a"), -1);
  EXPECT_TRUE(lease.reachable(1000).empty());
}

TEST(QuorumLeaseTest, OlderRoundTripDoesNotMoveTheExpiryBack) {
  QuorumLease lease = make_lease({"a", "b", "c"});
  lease.on_round_trip("b", 1000);
  lease.on_round_trip("b", 900);  // a late pong for an earlier ping
  EXPECT_EQ(lease.last_round_trip_ms("b"), 1000);
  EXPECT_EQ(lease.expires_ms(), 1300);
}

TEST(QuorumLeaseTest, DroppingAMemberForgetsItsRoundTrip) {
  QuorumLease lease = make_lease({"a", "b", "c"});
  lease.on_round_trip("b", 1000);
  ASSERT_TRUE(lease.holds(1000));

  lease.set_members({"a", "c", "d"}, "a");
  EXPECT_EQ(lease.last_round_trip_ms("b"), -1);
  EXPECT_FALSE(lease.holds(1000));
  EXPECT_TRUE(lease.reachable(1000).empty());

  // Coming back does not resurrect the old round trip.
  lease.set_members({"a", "b", "c"}, "a");
  EXPECT_FALSE(lease.holds(1000));
}

TEST(QuorumLeaseTest, KeepingAMemberKeepsItsRoundTrip) {
  QuorumLease lease = make_lease({"a", "b", "c"});
  lease.on_round_trip("b", 1000);
  lease.set_members({"a", "b", "c", "d"}, "a");
  EXPECT_EQ(lease.last_round_trip_ms("b"), 1000);
  // Four members need two peers now.
  EXPECT_FALSE(lease.holds(1000));
  lease.on_round_trip("d", 1100);
  EXPECT_EQ(lease.expires_ms(), 1000 + kLeaseMs);
}

TEST(QuorumLeaseTest, ExpiryFollowsTheKthNewestRoundTrip) {
  // Five members: self plus two peers make a majority, so the lease lasts
  // until the second newest round trip ages out.
  QuorumLease lease = make_lease({"a", "b", "c", "d", "e"});
  lease.on_round_trip("b", 1000);
  EXPECT_EQ(lease.expires_ms(), kNever) << "one peer is not enough with five members";
  lease.on_round_trip("c", 1100);
  EXPECT_EQ(lease.expires_ms(), 1000 + kLeaseMs);
  lease.on_round_trip("d", 1200);
  EXPECT_EQ(lease.expires_ms(), 1100 + kLeaseMs);
  lease.on_round_trip("e", 1050);
  EXPECT_EQ(lease.expires_ms(), 1100 + kLeaseMs);
  lease.on_round_trip("b", 1250);  // newest now: b 1250, d 1200, c 1100, e 1050
  EXPECT_EQ(lease.expires_ms(), 1200 + kLeaseMs);
  EXPECT_TRUE(lease.holds(1499));
  EXPECT_FALSE(lease.holds(1500));
}

TEST(QuorumLeaseTest, ReachableListsPeersInsideTheWindow) {
  QuorumLease lease = make_lease({"a", "b", "c", "d", "e"});
  lease.on_round_trip("b", 1000);
  lease.on_round_trip("c", 1200);
  lease.on_round_trip("e", 1290);
  EXPECT_EQ(lease.reachable(1299), (std::vector<std::string>{"b", "c", "e"}));
  EXPECT_EQ(lease.reachable(1300), (std::vector<std::string>{"c", "e"}));
  EXPECT_EQ(lease.reachable(1499), (std::vector<std::string>{"c", "e"}));
  EXPECT_EQ(lease.reachable(1500), (std::vector<std::string>{"e"}));
  EXPECT_TRUE(lease.reachable(1590).empty());
}

}  // namespace
}  // namespace bulwark
