// The rules of adding and removing nodes (daemon/node_changes.h).
#include "daemon/node_changes.h"

#include <gtest/gtest.h>

#include <string>

#include "fake_clock.h"

namespace bulwark {
namespace {

TEST(AddKeepsMajorityTest, AnAddNeedsAMajorityOfTheNewSizeReachable) {
  // 3 nodes, all reachable: 4 after the add, majority 3.
  EXPECT_TRUE(add_keeps_majority("n4", 3, 3, true).ok());
  // One of 3 down: the 4-node majority of 3 is not reachable.
  const Status st = add_keeps_majority("n4", 3, 2, true);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kInvalid);
  EXPECT_NE(st.error().message.find("majority 3 of 4 nodes while only 2 are reachable"),
            std::string::npos)
      << st.error().message;
  // 4 of 5 reachable: 6 after the add, majority 4.
  EXPECT_TRUE(add_keeps_majority("n6", 5, 4, true).ok());
  EXPECT_FALSE(add_keeps_majority("n6", 5, 3, true).ok());
}

TEST(AddKeepsMajorityTest, ARepeatedAddOfAMemberDoesNotGrowTheCluster) {
  // n4 is a member already (an interrupted add being finished): 4 nodes,
  // majority 3.
  EXPECT_TRUE(add_keeps_majority("n4", 4, 3, false).ok());
  EXPECT_FALSE(add_keeps_majority("n4", 4, 2, false).ok());
  // A single node adding a second: 2 nodes, majority 2, only itself reachable.
  EXPECT_FALSE(add_keeps_majority("n2", 1, 1, true).ok());
}

TEST(ExclusiveStillRunningTest, NamesSingletonsPromotedAndUnknownInstancesNotStopped) {
  ResourceConfig config;
  ResourceSpec single;
  single.name = "db";
  single.kind = ResourceKind::kSingleton;
  ResourceSpec clone;
  clone.name = "web";
  clone.kind = ResourceKind::kClone;
  ResourceSpec prom;
  prom.name = "pg";
  prom.kind = ResourceKind::kPromotable;
  config.resources = {single, clone, prom};

  NodeStatusRecord st;
  st.resources["web"].state = InstanceState::kStarted;  // a clone: not exclusive
  st.resources["pg"].state = InstanceState::kStarted;   // unpromoted
  EXPECT_EQ(exclusive_still_running(st, &config), "");

  st.resources["db"].state = InstanceState::kStarted;
  st.resources["pg"].promoted = true;                    // a promotion under way counts
  st.resources["gone"].state = InstanceState::kStarted;  // no longer configured
  EXPECT_EQ(exclusive_still_running(st, &config), "db, gone, pg");

  st.resources["db"].state = InstanceState::kStopped;
  st.resources["gone"].state = InstanceState::kStopped;
  st.resources["pg"].state = InstanceState::kStopped;
  EXPECT_EQ(exclusive_still_running(st, &config), "");
  // Without a readable config nothing is known to be non-exclusive.
  st.resources["web"].state = InstanceState::kStarted;
  EXPECT_EQ(exclusive_still_running(st, nullptr), "web");
}

TEST(RetryMemberChangeTest, RetriesPassingRefusalsUntilTheDeadlineAndStopsOnFinalOnes) {
  test_support::FakeClock clock(1000);
  int calls = 0;
  // Passing refusals, then success.
  Status st = retry_member_change(clock, 12000, [&]() -> Status {
    return ++calls < 3 ? Status(make_error(Errc::kUnavailable, "etcdserver: unhealthy cluster"))
                       : Status(Ok{});
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(calls, 3);
  // A final refusal ends it at once.
  calls = 0;
  st = retry_member_change(clock, 12000, [&]() -> Status {
    ++calls;
    return make_error(Errc::kInvalid, "etcdserver: Peer URLs already exists");
  });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(calls, 1);
  // Unknown outcomes are retried too, but not past the deadline (each wait
  // advances the fake clock by 300 ms).
  calls = 0;
  const int64_t started = clock.mono_ms();
  st = retry_member_change(clock, 1000, [&]() -> Status {
    ++calls;
    return make_error(Errc::kTimeout, "etcdserver: request timed out");
  });
  EXPECT_EQ(st.error().code, Errc::kTimeout);
  EXPECT_EQ(calls, 5);  // at 0, 300, 600, 900 and 1200 ms
  EXPECT_EQ(clock.mono_ms() - started, 1200);
}

}  // namespace
}  // namespace bulwark
