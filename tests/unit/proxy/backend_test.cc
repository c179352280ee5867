// Tests of a backend's live state: passive health verdicts, live changes and
// reload matching, through pick() as the workers see it.
#include "proxy/backend.h"

#include <gtest/gtest.h>

namespace bulwark::proxy {
namespace {

BackendConfig config(int servers, CheckType check = CheckType::kNone) {
  BackendConfig c;
  c.name = "app";
  c.error_limit = 2;
  c.check.type = check;
  for (int i = 0; i < servers; ++i) {
    ServerConfig s;
    s.name = "s" + std::to_string(i);
    s.address = *parse_socket_address("127.0.0.1:" + std::to_string(9000 + i));
    c.servers.push_back(s);
  }
  return c;
}

std::string pick_name(Backend& b) {
  auto choice = b.pick(0, {});
  if (choice.outcome != PickOutcome::kPicked) return "-";
  b.release(*choice.server);
  return choice.server->name();
}

TEST(BackendTest, UncheckedServerIsMarkedDownAfterErrorLimitButNotTheLastOne) {
  Backend b(config(2), 1);
  auto s0 = b.find("s0");
  EXPECT_EQ(b.note_traffic_failure(*s0), Backend::Verdict::kCounted);
  EXPECT_EQ(b.note_traffic_failure(*s0), Backend::Verdict::kMarkedDown);
  EXPECT_FALSE(s0->up());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(pick_name(b), "s1");
  auto s1 = b.find("s1");
  EXPECT_EQ(b.note_traffic_failure(*s1), Backend::Verdict::kCounted);
  EXPECT_EQ(b.note_traffic_failure(*s1), Backend::Verdict::kCounted);  // the last one stays
  EXPECT_TRUE(s1->up());
}

TEST(BackendTest, SuccessResetsTheErrorCount) {
  Backend b(config(2), 1);
  auto s0 = b.find("s0");
  EXPECT_EQ(b.note_traffic_failure(*s0), Backend::Verdict::kCounted);
  s0->note_traffic_success();
  EXPECT_EQ(b.note_traffic_failure(*s0), Backend::Verdict::kCounted);
  EXPECT_TRUE(s0->up());
}

TEST(BackendTest, CheckedServerGetsACheckInsteadOfBeingMarkedDown) {
  Backend b(config(2, CheckType::kTcp), 1);
  auto s0 = b.find("s0");
  EXPECT_FALSE(s0->take_check_request());
  b.note_traffic_failure(*s0);
  EXPECT_EQ(b.note_traffic_failure(*s0), Backend::Verdict::kCheckRequested);
  EXPECT_TRUE(s0->up());
  EXPECT_TRUE(s0->take_check_request());
  EXPECT_FALSE(s0->take_check_request());
}

TEST(BackendTest, LiveChangesAreValidatedAndApplied) {
  Backend b(config(1), 1);
  ServerConfig extra;
  extra.name = "s9";
  extra.address = *parse_socket_address("127.0.0.1:9009");
  ASSERT_TRUE(b.add_server(extra).ok());
  EXPECT_EQ(b.add_server(extra).error().code, Errc::kConflict);
  extra.name = "bad name";
  EXPECT_EQ(b.add_server(extra).error().code, Errc::kInvalid);
  ASSERT_TRUE(b.set_draining("s0", true).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(pick_name(b), "s9");
  ASSERT_TRUE(b.set_draining("s0", false).ok());
  ASSERT_TRUE(b.set_weight("s9", 0).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(pick_name(b), "s0");
  EXPECT_FALSE(b.set_weight("s9", 999).ok());
  EXPECT_EQ(b.remove_server("nope").error().code, Errc::kNotFound);
  auto s0 = b.find("s0");
  ASSERT_TRUE(b.remove_server("s0").ok());
  EXPECT_EQ(b.find("s0"), nullptr);
  EXPECT_EQ(pick_name(b), "-");  // s9 has weight 0
  EXPECT_EQ(s0->name(), "s0");   // still alive for connections that hold it
}

TEST(BackendTest, ReloadKeepsServersByNameAndAddress) {
  Backend b(config(2), 1);
  auto s0 = b.find("s0");
  auto s1 = b.find("s1");
  s1->set_up(false);
  BackendConfig next = config(2);
  next.servers[1].address = *parse_socket_address("127.0.0.1:9999");  // moved: a new server
  b.apply(next);
  EXPECT_EQ(b.find("s0"), s0);
  EXPECT_NE(b.find("s1"), s1);
  EXPECT_TRUE(b.find("s1")->up());
}

TEST(BackendTest, QueueIsBounded) {
  BackendConfig c = config(1);
  c.queue_max = 2;
  Backend b(c, 1);
  EXPECT_TRUE(b.try_enqueue());
  EXPECT_TRUE(b.try_enqueue());
  EXPECT_FALSE(b.try_enqueue());
  b.dequeued();
  EXPECT_TRUE(b.try_enqueue());
  EXPECT_EQ(b.queued(), 2);
}

}  // namespace
}  // namespace bulwark::proxy
