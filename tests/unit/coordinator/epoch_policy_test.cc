// Table-driven tests of when a node may claim or act on the coordinator
// epoch.
#include "coordinator/epoch_policy.h"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>

namespace bulwark {
namespace {

const char* action_name(EpochAction a) {
  switch (a) {
    case EpochAction::kNone:
      return "kNone";
    case EpochAction::kClaim:
      return "kClaim";
    case EpochAction::kAct:
      return "kAct";
  }
  return "?";
}

constexpr int64_t kMyToken = 1234;

// Members of a view: this node, a peer that answers (and holds its lease),
// a peer silent for 900 ms.
MemberStatus self_member(const std::string& name) {
  return MemberStatus{.name = name,
                      .self = true,
                      .online = true,
                      .last_contact_ago_ms = 0,
                      .rtt_ms = -1,
                      .peer_holds_lease = true};
}
MemberStatus reached_peer(const std::string& name) {
  return MemberStatus{.name = name,
                      .self = false,
                      .online = true,
                      .last_contact_ago_ms = 10,
                      .rtt_ms = 1,
                      .peer_holds_lease = true};
}
MemberStatus lost_peer(const std::string& name) {
  return MemberStatus{.name = name,
                      .self = false,
                      .online = false,
                      .last_contact_ago_ms = 900,
                      .rtt_ms = 1,
                      .peer_holds_lease = false};
}

// The view of "n1" in a cluster n1, n2, n3 where n2 is online and n3 is not.
MembershipView healthy_view() {
  MembershipView v;
  v.is_member = true;
  v.holds_lease = true;
  v.lease_remaining_ms = 250;
  v.majority = 2;
  v.members = {self_member("n1"), reached_peer("n2"), lost_peer("n3")};
  v.reachable = {"n2"};
  return v;
}

CoordinatorRecord record_of(const std::string& node, int64_t mod_revision) {
  CoordinatorRecord r;
  r.node = node;
  r.epoch = 7;
  r.acquired_wall_ms = 1700000000000;
  r.mod_revision = mod_revision;
  return r;
}

// The inputs under which n1 acts: it holds the lease and its own epoch. The
// coordinator passes a token only while no newer record superseded it.
EpochInputs base_inputs() {
  EpochInputs in;
  in.self = "n1";
  in.view = healthy_view();
  in.record = record_of("n1", kMyToken);
  in.my_token = kMyToken;
  in.store_loaded = true;
  in.membership_settled = true;
  return in;
}

// The record shows another node's epoch, and we have no claim of our own.
void other_holder(EpochInputs& in, const std::string& node) {
  in.record = record_of(node, 99);
  in.my_token = 0;
}

struct EpochCase {
  const char* name;
  void (*change)(EpochInputs&);
  EpochAction expected;
};

void PrintTo(const EpochCase& c, std::ostream* os) { *os << c.name; }

class EpochPolicyTest : public ::testing::TestWithParam<EpochCase> {};

TEST_P(EpochPolicyTest, Decides) {
  const EpochCase& tc = GetParam();
  EpochInputs in = base_inputs();
  tc.change(in);
  const EpochAction got = decide_epoch_action(in);
  EXPECT_EQ(got, tc.expected) << tc.name << ": got " << action_name(got) << ", expected "
                              << action_name(tc.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, EpochPolicyTest,
    ::testing::Values(
        EpochCase{"OwnRecordWithOwnToken", [](EpochInputs&) {}, EpochAction::kAct},
        // Without the lease nothing happens, whatever the record says.
        EpochCase{"NoLeaseNoRecord",
                  [](EpochInputs& in) {
                    in.view.holds_lease = false;
                    in.record.reset();
                  },
                  EpochAction::kNone},
        EpochCase{"NoLeaseOwnRecord", [](EpochInputs& in) { in.view.holds_lease = false; },
                  EpochAction::kNone},
        EpochCase{"NoLeaseHolderOffline",
                  [](EpochInputs& in) {
                    in.view.holds_lease = false;
                    other_holder(in, "n3");
                  },
                  EpochAction::kNone},
        EpochCase{"StoreNotLoaded",
                  [](EpochInputs& in) {
                    in.store_loaded = false;
                    in.record.reset();
                  },
                  EpochAction::kNone},
        EpochCase{"StoreNotLoadedOwnRecord", [](EpochInputs& in) { in.store_loaded = false; },
                  EpochAction::kNone},
        EpochCase{"NotAMember",
                  [](EpochInputs& in) {
                    in.view.is_member = false;
                    in.record.reset();
                  },
                  EpochAction::kNone},
        EpochCase{"NotAMemberOwnRecord", [](EpochInputs& in) { in.view.is_member = false; },
                  EpochAction::kNone},
        EpochCase{"NoRecordWithLease",
                  [](EpochInputs& in) {
                    in.record.reset();
                    in.my_token = 0;
                  },
                  EpochAction::kClaim},
        EpochCase{"NoRecordUnsettled",
                  [](EpochInputs& in) {
                    in.record.reset();
                    in.my_token = 0;
                    in.membership_settled = false;
                  },
                  EpochAction::kClaim},
        // We just claimed and the cache has not caught up with our record:
        // the claim stands.
        EpochCase{"OwnClaimNotYetInTheCache", [](EpochInputs& in) { in.record.reset(); },
                  EpochAction::kAct},
        EpochCase{"OwnClaimNewerThanTheCachedRecord",
                  [](EpochInputs& in) { in.record = record_of("n3", kMyToken - 1); },
                  EpochAction::kAct},
        EpochCase{"OwnClaimNotYetInTheCacheNoLease",
                  [](EpochInputs& in) {
                    in.record.reset();
                    in.view.holds_lease = false;
                  },
                  EpochAction::kNone},
        // Our name with a token that is not ours: a previous run of this
        // daemon took it; claim again to fence that run.
        EpochCase{"OwnRecordAfterRestart", [](EpochInputs& in) { in.my_token = 0; },
                  EpochAction::kClaim},
        EpochCase{"OwnRecordWithOlderToken", [](EpochInputs& in) { in.my_token = kMyToken - 1; },
                  EpochAction::kClaim},
        EpochCase{"OwnRecordNewerThanOurToken",
                  [](EpochInputs& in) { in.record->mod_revision = kMyToken + 5; },
                  EpochAction::kClaim},
        EpochCase{"HolderOnline", [](EpochInputs& in) { other_holder(in, "n2"); },
                  EpochAction::kNone},
        EpochCase{"HolderOnlineUnsettled",
                  [](EpochInputs& in) {
                    other_holder(in, "n2");
                    in.membership_settled = false;
                  },
                  EpochAction::kNone},
        // A record as new as our token that names somebody else.
        EpochCase{"OtherHolderAtOurToken",
                  [](EpochInputs& in) { in.record = record_of("n2", kMyToken); },
                  EpochAction::kNone},
        EpochCase{"HolderOfflineSettled", [](EpochInputs& in) { other_holder(in, "n3"); },
                  EpochAction::kClaim},
        EpochCase{"HolderOfflineNotSettled",
                  [](EpochInputs& in) {
                    other_holder(in, "n3");
                    in.membership_settled = false;
                  },
                  EpochAction::kNone},
        EpochCase{"HolderRemovedFromMembership", [](EpochInputs& in) { other_holder(in, "n9"); },
                  EpochAction::kClaim},
        EpochCase{"HolderRemovedNotSettled",
                  [](EpochInputs& in) {
                    other_holder(in, "n9");
                    in.membership_settled = false;
                  },
                  EpochAction::kClaim}),
    [](const ::testing::TestParamInfo<EpochCase>& info) { return info.param.name; });

TEST(EpochPolicySweepTest, OnlyTheLeaseHolderWithItsTokenActs) {
  // Sweep every combination of the boolean inputs for n1's own record: only
  // the one with everything in order yields kAct, and none yields kClaim
  // unless the token differs.
  for (int bits = 0; bits < 32; ++bits) {
    EpochInputs in = base_inputs();
    in.store_loaded = bits & 1;
    in.view.is_member = bits & 2;
    in.view.holds_lease = bits & 4;
    in.membership_settled = bits & 8;
    const bool token_matches = bits & 16;
    if (!token_matches) in.my_token = 0;
    const bool may_decide = in.store_loaded && in.view.is_member && in.view.holds_lease;
    const EpochAction expected = !may_decide
                                     ? EpochAction::kNone
                                     : (token_matches ? EpochAction::kAct : EpochAction::kClaim);
    EXPECT_EQ(decide_epoch_action(in), expected) << "bits " << bits;
  }
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

// n1's link to the holder n3 is cut, but n2 still reaches n3: n3 is fine and
// keeps the epoch. Claiming here would make n1 and n3 take it from each
// other for as long as the link is down.
TEST(EpochPolicyTest, ACutLinkToAHolderOthersReachIsNoReasonToClaim) {
  EpochInputs in = base_inputs();
  in.record = record_of("n3", 99);
  in.my_token = 0;
  in.view.members[1].peer_sees_watched = true;  // n2 reaches n3
  EXPECT_EQ(decide_epoch_action(in), EpochAction::kNone);
  in.view.members[1].peer_sees_watched = false;  // nobody reaches n3: it is gone
  EXPECT_EQ(decide_epoch_action(in), EpochAction::kClaim);
}

// Five nodes: the holder n5 is reached only by n4, which cannot form a
// majority with it. n1, n2, n3 cannot reach it: three of five, a majority,
// so they replace it (else no node would coordinate while this lasts).
TEST(EpochPolicyTest, AMajorityThatCannotReachTheHolderClaims) {
  EpochInputs in = base_inputs();
  in.record = record_of("n5", 99);
  in.my_token = 0;
  in.view.majority = 3;
  in.view.members = {self_member("n1"), reached_peer("n2"), reached_peer("n3"), reached_peer("n4"),
                     lost_peer("n5")};
  in.view.members[3].peer_sees_watched = true;  // n4 reaches n5
  EXPECT_EQ(decide_epoch_action(in), EpochAction::kClaim);
  in.view.members[2].peer_sees_watched = true;  // n3 too: only n1, n2 cannot
  EXPECT_EQ(decide_epoch_action(in), EpochAction::kNone);
}

}  // namespace
}  // namespace bulwark
