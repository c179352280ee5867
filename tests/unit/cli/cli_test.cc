// Tests of the `bulwark` CLI pieces that need no running cluster: list and
// endpoint parsing, exit codes, the status rendering, and argument errors
// that must be refused before any request is sent.
#include "cli/cli.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/api_client.h"
#include "cli/exit_codes.h"
#include "cli/status_view.h"
#include "core/config.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(SplitListTest, SplitsOnCommasAndTrimsSpaces) {
  EXPECT_EQ(split_list("a,b , c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_list("https://10.0.0.1:7400"),
            (std::vector<std::string>{"https://10.0.0.1:7400"}));
  EXPECT_EQ(split_list("  one  "), (std::vector<std::string>{"one"}));
  EXPECT_EQ(split_list("a b,c"), (std::vector<std::string>{"a b", "c"})) << "inner spaces stay";
}

TEST(SplitListTest, DropsEmptyItems) {
  EXPECT_TRUE(split_list("").empty());
  EXPECT_TRUE(split_list(",").empty());
  EXPECT_TRUE(split_list(" , ,  ").empty());
  EXPECT_EQ(split_list(",a,,b,"), (std::vector<std::string>{"a", "b"}));
}

TEST(NormalizeEndpointTest, AddsHttpsWhenNoSchemeIsGiven) {
  EXPECT_EQ(normalize_endpoint("10.0.0.1:7400"), "https://10.0.0.1:7400");
  EXPECT_EQ(normalize_endpoint("[fd00::1]:7400"), "https://[fd00::1]:7400");
  EXPECT_EQ(normalize_endpoint("https://10.0.0.1:7400"), "https://10.0.0.1:7400");
  EXPECT_EQ(normalize_endpoint("http://10.0.0.1:7400"), "http://10.0.0.1:7400");
}

TEST(ExitCodeTest, FollowsTheErrorKind) {
  const std::map<Errc, int> expected = {
      {Errc::kInvalid, 2},      {Errc::kNotFound, 2}, {Errc::kNoQuorum, 3},
      {Errc::kUnauthorized, 4}, {Errc::kConflict, 1}, {Errc::kEpochSuperseded, 1},
      {Errc::kUnavailable, 1},  {Errc::kTimeout, 1},  {Errc::kIo, 1},
  };
  for (const auto& [code, rc] : expected) {
    EXPECT_EQ(exit_code_for(code), rc) << errc_name(code);
  }
  EXPECT_EQ(kCliOk, 0);
  EXPECT_EQ(kCliFailed, 1);
  EXPECT_EQ(kCliBadInput, 2);
  EXPECT_EQ(kCliNoQuorum, 3);
  EXPECT_EQ(kCliUnauthorized, 4);
}

// Shaped like the daemon's /v1/status answer.
json sample_status() {
  return json::parse(R"({
    "cluster": "demo",
    "node": "n1",
    "coordinator": "n2",
    "epoch": 7,
    "quorate": true,
    "lease": {"held": true, "remaining_ms": 240, "majority": 2, "members": 3,
              "reachable": ["n2"], "lease_ms": 300, "heartbeat_ms": 50},
    "etcd": {"mode": "embedded", "healthy": true, "endpoint": "https://10.0.0.1:2379",
             "leader": "n2", "raft_term": 3, "version": "3.5.9", "error": null},
    "store": {"loaded": true, "initialized": true, "schema_version": 1, "watching": true,
              "revision": 41, "confirmed_ago_ms": 12, "reloads": 0, "errors": []},
    "nodes": [
      {"name": "n1", "address": "10.0.0.1", "online": true, "mode": "online",
       "attributes": {"zone": "a"}, "self": true, "coordinator": false,
       "last_contact_ms": 0, "rtt_ms": null},
      {"name": "n2", "address": "10.0.0.2", "online": true, "mode": "online",
       "attributes": {"zone": "b", "rack": "r2"}, "self": false, "coordinator": true,
       "last_contact_ms": 20, "rtt_ms": 1},
      {"name": "n3", "address": "10.0.0.3", "online": false, "mode": "maintenance",
       "attributes": {}, "self": false, "coordinator": false,
       "last_contact_ms": -1, "rtt_ms": null}
    ]
  })");
}

// The line of `text` that starts with `prefix`, if any.
std::optional<std::string> line_starting(const std::string& text, const std::string& prefix) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    if (line.rfind(prefix, 0) == 0) return line;
    pos = end + 1;
  }
  return std::nullopt;
}

TEST(RenderStatusTest, ShowsCoordinatorQuorumAndNodes) {
  const std::string out = render_status(sample_status());
  const auto cluster = line_starting(out, "cluster:");
  ASSERT_TRUE(cluster) << out;
  EXPECT_TRUE(contains(*cluster, "demo")) << *cluster;
  EXPECT_TRUE(contains(*cluster, "as seen by n1")) << *cluster;

  const auto coordinator = line_starting(out, "coordinator:");
  ASSERT_TRUE(coordinator) << out;
  EXPECT_TRUE(contains(*coordinator, "n2 (epoch 7)")) << *coordinator;

  const auto quorum = line_starting(out, "quorum:");
  ASSERT_TRUE(quorum) << out;
  EXPECT_TRUE(contains(*quorum, "yes (2 of 3 nodes reachable, majority 2, lease 240 ms left)"))
      << *quorum;

  const auto etcd = line_starting(out, "etcd:");
  ASSERT_TRUE(etcd) << out;
  EXPECT_TRUE(contains(*etcd, "healthy (embedded, leader n2, v3.5.9)")) << *etcd;

  const auto store = line_starting(out, "store:");
  ASSERT_TRUE(store) << out;
  EXPECT_TRUE(contains(*store, "revision 41, watching, confirmed 12 ms ago")) << *store;

  // One row per node; the coordinator is starred.
  const auto n1 = line_starting(out, "n1 ");
  const auto n2 = line_starting(out, "n2* ");
  const auto n3 = line_starting(out, "n3 ");
  ASSERT_TRUE(n1 && n2 && n3) << out;
  EXPECT_TRUE(contains(*n1, "10.0.0.1")) << *n1;
  EXPECT_TRUE(contains(*n1, "self")) << *n1;
  EXPECT_TRUE(contains(*n1, "zone=a")) << *n1;
  EXPECT_TRUE(contains(*n2, "online")) << *n2;
  EXPECT_TRUE(contains(*n2, "20 ms")) << *n2;
  EXPECT_TRUE(contains(*n2, "rack=r2,zone=b")) << *n2;
  EXPECT_TRUE(contains(*n3, "OFFLINE")) << *n3;
  EXPECT_TRUE(contains(*n3, "maintenance")) << *n3;
  // A peer that never answered has no contact time, not a negative one.
  EXPECT_TRUE(contains(*n3, "never")) << *n3;
  EXPECT_FALSE(contains(*n3, "-1")) << *n3;
}

TEST(RenderStatusTest, ShowsLostQuorumAndNoCoordinator) {
  json s = sample_status();
  s["quorate"] = false;
  s["coordinator"] = nullptr;
  s["epoch"] = 0;
  s["lease"]["held"] = false;
  s["lease"]["remaining_ms"] = 0;
  s["lease"]["reachable"] = json::array();
  s["etcd"]["healthy"] = false;
  s["etcd"]["leader"] = nullptr;
  s["etcd"]["error"] = "context deadline exceeded";
  s["store"]["watching"] = false;
  for (auto& n : s["nodes"]) n["coordinator"] = false;

  const std::string out = render_status(s);
  const auto quorum = line_starting(out, "quorum:");
  ASSERT_TRUE(quorum) << out;
  EXPECT_TRUE(contains(*quorum, "NO (1 of 3 nodes reachable")) << *quorum;
  const auto coordinator = line_starting(out, "coordinator:");
  ASSERT_TRUE(coordinator) << out;
  EXPECT_TRUE(contains(*coordinator, "none")) << *coordinator;
  const auto etcd = line_starting(out, "etcd:");
  ASSERT_TRUE(etcd) << out;
  EXPECT_TRUE(contains(*etcd, "UNHEALTHY")) << *etcd;
  EXPECT_TRUE(contains(*etcd, "leader none")) << *etcd;
  EXPECT_TRUE(contains(*etcd, ": context deadline exceeded")) << *etcd;
  EXPECT_TRUE(contains(out, "NOT watching")) << out;
  EXPECT_FALSE(line_starting(out, "n2*").has_value()) << out;
  EXPECT_TRUE(line_starting(out, "n2 ").has_value()) << out;
}

TEST(RenderStatusTest, ToleratesAMinimalDocument) {
  const std::string out = render_status(json::object());
  EXPECT_TRUE(contains(out, "coordinator: none")) << out;
  EXPECT_TRUE(contains(out, "quorum:      NO")) << out;
  EXPECT_TRUE(contains(out, "NODE")) << out;
}

// Runs the CLI with the given arguments, as main() would.
int run(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return run_cli(static_cast<int>(args.size()), argv.data());
}

// The CLI reads its defaults from the environment; each test starts with
// none of them set and puts back what it found.
class RunCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVariables) {
      if (const char* v = std::getenv(name)) saved_[name] = v;
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (const char* name : kVariables) unsetenv(name);
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
  }

  static constexpr const char* kVariables[] = {"BULWARK_ENDPOINT", "BULWARK_TOKEN_FILE",
                                               "BULWARK_CA_FILE"};
  std::map<std::string, std::string> saved_;
};

TEST_F(RunCliTest, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run({"bulwark"}), kCliBadInput) << "a subcommand is required";
  EXPECT_EQ(run({"bulwark", "frobnicate"}), kCliBadInput);
  EXPECT_EQ(run({"bulwark", "node"}), kCliBadInput);
  EXPECT_EQ(run({"bulwark", "node", "attr"}), kCliBadInput) << "the node name is missing";
  EXPECT_EQ(run({"bulwark", "node", "add", "n4"}), kCliBadInput) << "--address is missing";
  EXPECT_EQ(run({"bulwark", "status", "--no-such-flag"}), kCliBadInput);
  EXPECT_EQ(run({"bulwark", "init", "--dir", "/nonexistent"}), kCliBadInput);
}

// `init --profile fast` writes the fast timings; explicit values win; an
// unknown profile is refused before anything is written.
TEST_F(RunCliTest, InitWritesTheTimingsOfItsProfile) {
  char tmpl[] = "/tmp/bulwark-cli-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const auto init = [&](const std::string& sub, std::vector<std::string> extra) {
    std::vector<std::string> args = {"bulwark",   "init", "--dir",  dir + "/" + sub,
                                     "--cluster", "c",    "--node", "n1=127.0.9.1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };
  const auto config = [&](const std::string& sub) {
    auto c = load_config(dir + "/" + sub + "/bulwark.yaml");
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    return c.ok() ? *c : Config{};
  };
  ASSERT_EQ(init("fast", {"--profile", "fast"}), kCliOk);
  Config c = config("fast");
  EXPECT_EQ(c.heartbeat_ms, 20);
  EXPECT_EQ(c.lease_ms, 120);
  EXPECT_EQ(c.store.etcd_heartbeat_ms, 20);
  EXPECT_EQ(c.store.etcd_election_ms, 150);
  ASSERT_EQ(init("mixed", {"--profile", "fast", "--lease-ms", "200"}), kCliOk);
  c = config("mixed");
  EXPECT_EQ(c.heartbeat_ms, 20);
  EXPECT_EQ(c.lease_ms, 200);
  ASSERT_EQ(init("default", {}), kCliOk);
  c = config("default");
  EXPECT_EQ(c.heartbeat_ms, Config{}.heartbeat_ms);
  EXPECT_EQ(c.store.etcd_election_ms, Config{}.store.etcd_election_ms);
  EXPECT_EQ(init("quick", {"--profile", "quick"}), kCliBadInput);
  EXPECT_FALSE(std::filesystem::exists(dir + "/quick"));
  std::filesystem::remove_all(dir);
}

TEST_F(RunCliTest, HelpExitsWithZero) { EXPECT_EQ(run({"bulwark", "--help"}), kCliOk); }

TEST_F(RunCliTest, InvalidAssignmentsAreRefusedBeforeAnyRequest) {
  // An endpoint nobody listens on: these must fail before trying it.
  setenv("BULWARK_ENDPOINT", "127.0.0.1:1", 1);
  EXPECT_EQ(run({"bulwark", "node", "attr", "n1"}), kCliBadInput) << "nothing to change";
  EXPECT_EQ(run({"bulwark", "node", "attr", "n1", "zone"}), kCliBadInput) << "not KEY=VALUE";
  EXPECT_EQ(run({"bulwark", "node", "attr", "n1", "=a"}), kCliBadInput) << "empty key";
  EXPECT_EQ(run({"bulwark", "node", "add", "n4", "--address", "10.0.0.4", "--attr", "zone"}),
            kCliBadInput);
}

TEST_F(RunCliTest, StatusWithoutEndpointExitsWithTwo) {
  EXPECT_EQ(run({"bulwark", "status"}), kCliBadInput);
  EXPECT_EQ(run({"bulwark", "status", "--endpoint", " , "}), kCliBadInput)
      << "an endpoint list with no entries is no endpoint";
}

TEST_F(RunCliTest, StatusWithoutCaExitsWithTwo) {
  setenv("BULWARK_ENDPOINT", "127.0.0.1:1", 1);
  EXPECT_EQ(run({"bulwark", "status"}), kCliBadInput);
}

TEST_F(RunCliTest, WritesWithoutTokenExitWithFour) {
  EXPECT_EQ(run({"bulwark", "--endpoint", "127.0.0.1:1", "node", "remove", "n3"}),
            kCliUnauthorized);
  EXPECT_EQ(run({"bulwark", "node", "attr", "n1", "zone=a", "--endpoint", "127.0.0.1:1"}),
            kCliUnauthorized);
}

TEST_F(RunCliTest, UnreadableTokenFileIsReported) {
  EXPECT_NE(run({"bulwark", "--endpoint", "127.0.0.1:1", "--token-file",
                 "/nonexistent/bulwark/admin.token", "node", "remove", "n3"}),
            kCliOk);
}

}  // namespace
}  // namespace bulwark
