// Tests of server selection: every balance mode, weights, backups, maxconn
// (queueing), draining/down servers and retries avoiding tried servers.
#include "proxy/balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace bulwark::proxy {
namespace {

std::vector<Candidate> servers(std::initializer_list<int> weights) {
  std::vector<Candidate> out;
  uint64_t key = 1;
  for (int w : weights) {
    Candidate c;
    c.weight = w;
    c.key = mix64(key++);
    out.push_back(c);
  }
  return out;
}

std::map<int, int> count_picks(Balancer& b, const std::vector<Candidate>& c, Balance mode, int n) {
  std::map<int, int> counts;
  for (int i = 0; i < n; ++i) {
    const Pick p = b.pick(c, mode, static_cast<uint64_t>(i));
    EXPECT_EQ(p.outcome, PickOutcome::kPicked);
    ++counts[p.index];
  }
  return counts;
}

TEST(BalancerTest, RoundRobinFollowsWeightsExactlyOverOneCycle) {
  Balancer b;
  const auto c = servers({1, 2, 5});
  EXPECT_EQ(count_picks(b, c, Balance::kRoundRobin, 80),
            (std::map<int, int>{{0, 10}, {1, 20}, {2, 50}}));
}

TEST(BalancerTest, RoundRobinInterleavesRatherThanBursts) {
  Balancer b;
  const auto c = servers({1, 1, 2});
  std::string order;
  for (int i = 0; i < 8; ++i) order += std::to_string(b.pick(c, Balance::kRoundRobin, 0).index);
  // The weight-2 server never gets more than two picks in a row.
  EXPECT_EQ(order.find("222"), std::string::npos) << order;
  EXPECT_EQ(std::count(order.begin(), order.end(), '2'), 4) << order;
}

TEST(BalancerTest, ZeroWeightDownAndDrainingServersGetNothing) {
  Balancer b;
  auto c = servers({1, 0, 1, 1});
  c[2].usable = false;  // down or draining
  EXPECT_EQ(count_picks(b, c, Balance::kRoundRobin, 10), (std::map<int, int>{{0, 5}, {3, 5}}));
}

TEST(BalancerTest, LeastConnPrefersFewerActivePerWeight) {
  Balancer b;
  auto c = servers({1, 1, 2});
  c[0].active = 3;
  c[1].active = 1;
  c[2].active = 3;  // (3+1)/2 = 2 > (1+1)/1
  EXPECT_EQ(b.pick(c, Balance::kLeastConn, 0).index, 1);
  c[1].active = 5;
  EXPECT_EQ(b.pick(c, Balance::kLeastConn, 0).index, 2);
}

TEST(BalancerTest, LeastConnSpreadsTiesAmongIdleServers) {
  Balancer b;
  const auto c = servers({1, 1, 1});
  EXPECT_EQ(count_picks(b, c, Balance::kLeastConn, 30).size(), 3U);
}

TEST(BalancerTest, SourceIsStablePerClientAndSpreadsClients) {
  Balancer b;
  const auto c = servers({1, 1, 1});
  std::map<int, int> counts;
  for (uint64_t client = 0; client < 3000; ++client) {
    const int first = b.pick(c, Balance::kSource, mix64(client)).index;
    EXPECT_EQ(b.pick(c, Balance::kSource, mix64(client)).index, first);
    ++counts[first];
  }
  for (const auto& [server, n] : counts) EXPECT_NEAR(n, 1000, 150) << server;
}

TEST(BalancerTest, SourceMovesOnlyTheClientsOfARemovedServer) {
  Balancer b;
  auto c = servers({1, 1, 1, 1});
  std::vector<int> before;
  for (uint64_t client = 0; client < 2000; ++client)
    before.push_back(b.pick(c, Balance::kSource, mix64(client)).index);
  c[1].usable = false;
  for (uint64_t client = 0; client < 2000; ++client) {
    const int now = b.pick(c, Balance::kSource, mix64(client)).index;
    if (before[client] != 1) {
      EXPECT_EQ(now, before[client]) << client;
    }
    EXPECT_NE(now, 1);
  }
}

TEST(BalancerTest, FirstTakesTheFirstUsableServerUntilItIsFull) {
  Balancer b;
  auto c = servers({1, 1, 1});
  EXPECT_EQ(count_picks(b, c, Balance::kFirst, 10), (std::map<int, int>{{0, 10}}));
  c[0].usable = false;
  EXPECT_EQ(b.pick(c, Balance::kFirst, 0).index, 1);
  c[1].maxconn = 2;
  c[1].active = 2;
  EXPECT_EQ(b.pick(c, Balance::kFirst, 0).index, 2);
}

TEST(BalancerTest, BackupsOnlyWhenNoPrimaryIsUsable) {
  Balancer b;
  auto c = servers({1, 1, 1});
  c[2].backup = true;
  EXPECT_EQ(count_picks(b, c, Balance::kRoundRobin, 10), (std::map<int, int>{{0, 5}, {1, 5}}));
  c[0].usable = false;
  c[1].usable = false;
  EXPECT_EQ(b.pick(c, Balance::kRoundRobin, 0).index, 2);
}

TEST(BalancerTest, FullPrimariesQueueRatherThanSpillToBackups) {
  Balancer b;
  auto c = servers({1, 1});
  c[0].maxconn = 1;
  c[0].active = 1;
  c[1].backup = true;
  EXPECT_EQ(b.pick(c, Balance::kRoundRobin, 0).outcome, PickOutcome::kFull);
}

TEST(BalancerTest, NoUsableServerIsNone) {
  Balancer b;
  auto c = servers({1, 1});
  c[0].usable = c[1].usable = false;
  EXPECT_EQ(b.pick(c, Balance::kRoundRobin, 0).outcome, PickOutcome::kNone);
  EXPECT_EQ(b.pick({}, Balance::kLeastConn, 0).outcome, PickOutcome::kNone);
}

TEST(BalancerTest, RetriesAvoidTriedServersWhileOthersRemain) {
  for (Balance mode :
       {Balance::kRoundRobin, Balance::kLeastConn, Balance::kSource, Balance::kFirst}) {
    Balancer b;
    auto c = servers({1, 1, 1});
    c[0].excluded = true;
    c[1].excluded = true;
    EXPECT_EQ(b.pick(c, mode, 42).index, 2) << balance_name(mode);
    c[2].excluded = true;  // all tried: take one again rather than fail
    EXPECT_EQ(b.pick(c, mode, 42).outcome, PickOutcome::kPicked) << balance_name(mode);
  }
}

}  // namespace
}  // namespace bulwark::proxy
