// Tests of the placement policy: every kind, every constraint, stickiness,
// failures, moves and bans, and the safety rule that an exclusive resource
// never gets a second home while its old node may still run it.
#include "coordinator/placement_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "classes/registry/agent_classes.h"

namespace bulwark {
namespace {

using Nodes = std::vector<std::string>;

ResourceConfig resources(const std::string& yaml) {
  auto c = parse_resource_config(yaml, "test.yaml", agent_class_syntaxes());
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : ResourceConfig{};
}

std::vector<PolicyNode> nodes(int n) {
  std::vector<PolicyNode> out;
  for (int i = 1; i <= n; ++i) {
    PolicyNode node;
    node.name = "n" + std::to_string(i);
    node.attributes["zone"] = "rack" + std::to_string(i);
    out.push_back(node);
  }
  return out;
}

struct Fixture {
  ResourceConfig config;
  PolicyInput in;
  Fixture(const std::string& yaml, int node_count) : config(resources(yaml)) {
    in.config = &config;
    in.nodes = nodes(node_count);
  }
  PolicyNode& node(const std::string& name) {
    return *std::find_if(in.nodes.begin(), in.nodes.end(),
                         [&](const PolicyNode& n) { return n.name == name; });
  }
  Placement place() const { return compute_placement(in); }
  Nodes where(const std::string& resource) const { return place().resources.at(resource).nodes; }
};

constexpr const char* kSingleton = "resources: [{name: s, agent: exec, command: [/bin/s]}]\n";
constexpr const char* kClone =
    "resources: [{name: c, agent: exec, command: [/bin/c], clone: {}}]\n";

TEST(PlacementPolicyTest, CloneRunsOnEveryEligibleNode) {
  Fixture f(kClone, 4);
  EXPECT_EQ(f.where("c"), (Nodes{"n1", "n2", "n3", "n4"}));
  f.node("n2").standby = true;
  f.node("n4").online = false;
  EXPECT_EQ(f.where("c"), (Nodes{"n1", "n3"}));
}

TEST(PlacementPolicyTest, CloneMaxKeepsTheInstancesThatRun) {
  Fixture f("resources: [{name: c, agent: exec, command: [/bin/c], clone: {max: 2}}]\n", 4);
  f.in.running["c"] = {{"n3", false}, {"n4", false}};
  EXPECT_EQ(f.where("c"), (Nodes{"n3", "n4"}));
}

TEST(PlacementPolicyTest, AnInstanceStaysOnANodeWeMerelyCannotReach) {
  // A node the coordinator misses a few heartbeats of, while it may still
  // hold its lease, keeps its instances placed (and counted against
  // clone_max): a blip restarts nothing. Once it is known to be off, they
  // are replaced.
  Fixture f("resources: [{name: c, agent: exec, command: [/bin/c], clone: {max: 2}}]\n", 4);
  f.in.running["c"] = {{"n1", false}, {"n2", false}};
  f.node("n2").online = false;
  f.node("n2").may_be_up = true;
  EXPECT_EQ(f.where("c"), (Nodes{"n1", "n2"}));
  f.node("n2").may_be_up = false;  // its lease lapsed, or it was fenced
  EXPECT_EQ(f.where("c"), (Nodes{"n1", "n3"}));
  // One on a node being fenced is not named there, nor waited for.
  f.node("n2").may_be_up = true;
  f.node("n2").fencing = true;
  EXPECT_EQ(f.where("c"), (Nodes{"n1", "n3"}));
  // Without clone_max, every other eligible node runs one as well.
  Fixture g(kClone, 3);
  g.in.running["c"] = {{"n1", false}, {"n2", false}, {"n3", false}};
  g.node("n3").online = false;
  g.node("n3").may_be_up = true;
  EXPECT_EQ(g.where("c"), (Nodes{"n1", "n2", "n3"}));
}

TEST(PlacementPolicyTest, SingletonRunsOnExactlyOneNodeAndStaysThere) {
  Fixture f(kSingleton, 3);
  ASSERT_EQ(f.where("s").size(), 1U);
  f.in.running["s"] = {{"n3", false}};
  EXPECT_EQ(f.where("s"), (Nodes{"n3"}));
}

TEST(PlacementPolicyTest, StickinessOutweighsAReturningPreferredNode) {
  Fixture f(
      std::string(kSingleton) + "constraints: [{location: s, prefer: {node: n1}, score: 50}]\n", 3);
  EXPECT_EQ(f.where("s"), (Nodes{"n1"}));
  f.in.running["s"] = {{"n2", false}};  // it failed over while n1 was away
  EXPECT_EQ(f.where("s"), (Nodes{"n2"}));
}

TEST(PlacementPolicyTest, LocationByAttributePreferAndAvoid) {
  Fixture f(std::string(kSingleton) + "constraints: [{location: s, prefer: {zone: rack2}}]\n", 3);
  EXPECT_EQ(f.where("s"), (Nodes{"n2"}));
  Fixture g(std::string(kClone) + "constraints: [{location: c, avoid: {zone: rack1}}]\n", 2);
  g.config.resources[0].clone_max = 1;
  EXPECT_EQ(g.where("c"), (Nodes{"n2"}));
}

TEST(PlacementPolicyTest, ColocationWithASingletonAndWithAClone) {
  Fixture f(
      "resources:\n"
      "  - {name: a, agent: exec, command: [/bin/a]}\n"
      "  - {name: b, agent: exec, command: [/bin/b]}\n"
      "  - {name: c, agent: exec, command: [/bin/c], clone: {max: 1}}\n"
      "  - {name: d, agent: exec, command: [/bin/d]}\n"
      "constraints:\n"
      "  - {colocate: b, with: a}\n"
      "  - {colocate: d, with: c}\n"
      "  - {location: a, prefer: {node: n3}}\n"
      "  - {location: c, prefer: {node: n2}}\n",
      3);
  const Placement p = f.place();
  EXPECT_EQ(p.resources.at("a").nodes, (Nodes{"n3"}));
  EXPECT_EQ(p.resources.at("b").nodes, (Nodes{"n3"}));
  EXPECT_EQ(p.resources.at("d").nodes, (Nodes{"n2"}));
}

TEST(PlacementPolicyTest, ColocationApartAndNothingLeft) {
  Fixture f(
      "resources:\n"
      "  - {name: a, agent: exec, command: [/bin/a]}\n"
      "  - {name: b, agent: exec, command: [/bin/b]}\n"
      "constraints: [{colocate: b, apart: a}]\n",
      2);
  Placement p = f.place();
  EXPECT_NE(p.resources.at("a").nodes, p.resources.at("b").nodes);
  f.node("n2").online = false;
  f.node("n2").safe_to_replace = true;
  p = f.place();
  EXPECT_EQ(p.resources.at("a").nodes, (Nodes{"n1"}));
  EXPECT_TRUE(p.resources.at("b").nodes.empty());
  EXPECT_EQ(p.resources.at("b").reason, "no eligible node");
}

TEST(PlacementPolicyTest, UnconstrainedSingletonsSpreadOut) {
  Fixture f(
      "resources:\n"
      "  - {name: a, agent: exec, command: [/bin/a]}\n"
      "  - {name: b, agent: exec, command: [/bin/b]}\n"
      "  - {name: c, agent: exec, command: [/bin/c]}\n",
      3);
  const Placement p = f.place();
  std::set<std::string> used;
  for (const auto& r : {"a", "b", "c"}) used.insert(p.resources.at(r).nodes.at(0));
  EXPECT_EQ(used.size(), 3U);
}

TEST(PlacementPolicyTest, MigrationThresholdBanAndMove) {
  Fixture f(std::string(kSingleton), 3);
  f.in.running["s"] = {{"n1", false}};
  f.in.fail_counts["s"]["n1"] = 2;
  EXPECT_EQ(f.where("s"), (Nodes{"n1"}));  // restarted in place below the threshold
  f.in.fail_counts["s"]["n1"] = 3;
  EXPECT_NE(f.where("s"), (Nodes{"n1"}));
  f.in.fail_counts.clear();
  f.in.bans["s"] = {"n1"};
  EXPECT_NE(f.where("s"), (Nodes{"n1"}));
  f.in.bans.clear();
  f.in.moves["s"] = "n3";
  EXPECT_EQ(f.where("s"), Nodes{});  // stopped on n1 first
  f.in.running.clear();
  EXPECT_EQ(f.where("s"), (Nodes{"n3"}));
}

TEST(PlacementPolicyTest, AMovedSingletonStopsBeforeItStartsElsewhere) {
  Fixture f(kSingleton, 3);
  f.in.running["s"] = {{"n1", false}};
  f.node("n1").standby = true;
  Placement p = f.place();
  EXPECT_EQ(p.resources.at("s").nodes, Nodes{});
  EXPECT_NE(p.resources.at("s").reason.find("stopping on n1 before it starts on"),
            std::string::npos);
  f.in.running.clear();  // n1 reported it stopped
  p = f.place();
  ASSERT_EQ(p.resources.at("s").nodes.size(), 1U);
  EXPECT_NE(p.resources.at("s").nodes[0], "n1");
}

TEST(PlacementPolicyTest, ASingletonReportedOnTwoNodesStopsEverywhereFirst) {
  Fixture f(kSingleton, 3);
  // A stale report and a real one, or a crashed daemon's orphan: whichever
  // is true, no node may keep it until only one reports it.
  f.in.running["s"] = {{"n1", false}, {"n2", false}};
  Placement p = f.place();
  EXPECT_EQ(p.resources.at("s").nodes, Nodes{});
  EXPECT_NE(p.resources.at("s").reason.find("stopping on n1, n2"), std::string::npos);
  // The same when one of them is a lost node not yet known to be off.
  f.node("n1").online = false;
  EXPECT_EQ(f.where("s"), Nodes{});
  f.node("n1").safe_to_replace = true;  // fenced: only n2 runs it
  EXPECT_EQ(f.where("s"), (Nodes{"n2"}));
}

TEST(PlacementPolicyTest, APromotionWaitsForTheDemotion) {
  Fixture f("resources: [{name: db, agent: 'ocf:x:db', promotable: {promoted: 1}}]\n", 3);
  f.in.running["db"] = {{"n1", false}, {"n2", true}, {"n3", false}};
  f.in.moves["db"] = "n3";
  f.in.bans["db"] = {"n2"};  // the primary must leave n2
  Placement p = f.place();
  EXPECT_EQ(p.resources.at("db").promoted, Nodes{});
  EXPECT_NE(p.resources.at("db").reason.find("demoting on n2"), std::string::npos);
  f.in.running["db"] = {{"n1", false}, {"n3", false}};  // n2 demoted and stopped
  p = f.place();
  EXPECT_EQ(p.resources.at("db").promoted, (Nodes{"n3"}));
}

TEST(PlacementPolicyTest, AnExclusiveResourceWaitsForItsOldNodeToBeSafe) {
  Fixture f(kSingleton, 3);
  f.in.running["s"] = {{"n1", false}};
  f.node("n1").online = false;  // partitioned or paused: it may still run s
  Placement p = f.place();
  EXPECT_EQ(p.resources.at("s").nodes, (Nodes{"n1"}));
  EXPECT_NE(p.resources.at("s").reason.find("fenced or its lease has expired"), std::string::npos);
  f.node("n1").safe_to_replace = true;  // lease expired everywhere, or fenced
  p = f.place();
  ASSERT_EQ(p.resources.at("s").nodes.size(), 1U);
  EXPECT_NE(p.resources.at("s").nodes[0], "n1");
  EXPECT_TRUE(p.resources.at("s").reason.empty());
}

TEST(PlacementPolicyTest, PromotableKeepsItsPrimaryAndWaitsForAnUnsafeOne) {
  Fixture f("resources: [{name: db, agent: 'ocf:x:db', promotable: {promoted: 1}}]\n", 3);
  f.in.running["db"] = {{"n1", false}, {"n2", true}, {"n3", false}};
  Placement p = f.place();
  EXPECT_EQ(p.resources.at("db").nodes, (Nodes{"n1", "n2", "n3"}));
  EXPECT_EQ(p.resources.at("db").promoted, (Nodes{"n2"}));
  f.node("n2").online = false;
  p = f.place();
  EXPECT_EQ(p.resources.at("db").promoted, (Nodes{"n2"}));  // no second primary
  f.node("n2").safe_to_replace = true;
  p = f.place();
  ASSERT_EQ(p.resources.at("db").promoted.size(), 1U);
  EXPECT_NE(p.resources.at("db").promoted[0], "n2");
}

TEST(PlacementPolicyTest, NothingIsPlacedOnANodeBeingFenced) {
  // Pacemaker's unclean node: a life it boots before the fence returns
  // must start nothing the fence would end (and be fenced again for).
  Fixture f(
      "resources:\n"
      "  - {name: s, agent: exec, command: [/bin/s]}\n"
      "  - {name: c, agent: exec, command: [/bin/c], clone: {}}\n"
      "  - {name: db, agent: 'ocf:x:db', promotable: {promoted: 1}}\n",
      3);
  f.in.running["s"] = {{"n1", false}};
  f.in.running["db"] = {{"n1", true}, {"n2", false}, {"n3", false}};
  f.node("n1").online = false;
  f.node("n1").fencing = true;
  Placement p = f.place();
  // The singleton it may run is held: nowhere else, and not named there.
  EXPECT_TRUE(p.resources.at("s").nodes.empty());
  EXPECT_NE(p.resources.at("s").reason.find("until n1 is fenced"), std::string::npos);
  EXPECT_EQ(p.resources.at("c").nodes, (Nodes{"n2", "n3"}));
  // Its promoted instance still counts: no second primary, none named on n1.
  EXPECT_EQ(p.resources.at("db").nodes, (Nodes{"n2", "n3"}));
  EXPECT_TRUE(p.resources.at("db").promoted.empty());
  // Back as a new life while the call still runs: still nothing there.
  f.node("n1").online = true;
  f.in.running["s"] = {};
  f.in.running["db"] = {{"n2", false}, {"n3", false}};
  p = f.place();
  ASSERT_EQ(p.resources.at("s").nodes.size(), 1U);
  EXPECT_NE(p.resources.at("s").nodes[0], "n1");
  EXPECT_EQ(p.resources.at("c").nodes, (Nodes{"n2", "n3"}));
  // Once the call is over, n1 is a node like the others.
  f.node("n1").fencing = false;
  p = f.place();
  EXPECT_EQ(p.resources.at("c").nodes, (Nodes{"n1", "n2", "n3"}));
}

TEST(PlacementPolicyTest, GroupMembersShareOneNode) {
  Fixture f(
      "resources:\n"
      "  - {name: vip, agent: exec, command: [/bin/v]}\n"
      "  - {name: svc, agent: exec, command: [/bin/s]}\n"
      "groups: [{name: front, resources: [vip, svc]}]\n"
      "constraints: [{location: front, prefer: {node: n2}}]\n",
      3);
  Placement p = f.place();
  EXPECT_EQ(p.resources.at("vip").nodes, (Nodes{"n2"}));
  EXPECT_EQ(p.resources.at("svc").nodes, (Nodes{"n2"}));
  // One member failing too often moves the whole group.
  f.in.fail_counts["svc"]["n2"] = 3;
  p = f.place();
  EXPECT_EQ(p.resources.at("vip").nodes, p.resources.at("svc").nodes);
  EXPECT_NE(p.resources.at("vip").nodes, (Nodes{"n2"}));
}

TEST(PlacementPolicyTest, DisabledResourcesRunNowhere) {
  Fixture f("resources: [{name: s, agent: exec, command: [/bin/s], enabled: false}]\n", 2);
  f.in.running["s"] = {{"n1", false}};
  const Placement p = f.place();
  EXPECT_TRUE(p.resources.at("s").nodes.empty());
  EXPECT_EQ(p.resources.at("s").reason, "disabled");
}

TEST(PlacementPolicyTest, TheResultDoesNotDependOnInputOrder) {
  Fixture f(
      "resources:\n"
      "  - {name: a, agent: exec, command: [/bin/a]}\n"
      "  - {name: b, agent: exec, command: [/bin/b], clone: {max: 2}}\n"
      "  - {name: c, agent: exec, command: [/bin/c]}\n",
      5);
  const Placement first = f.place();
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(f.in.nodes.begin(), f.in.nodes.end(), rng);
    const Placement again = f.place();
    for (const auto& [name, placement] : first.resources) {
      EXPECT_EQ(again.resources.at(name).nodes, placement.nodes) << name;
    }
  }
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

// --- why a resource cannot run on a node (`resource move` refuses with it) ---

TEST(PlacementPolicyTest, AnObstacleNamesWhatKeepsAResourceOffANode) {
  const char* yaml =
      "resources:\n"
      "  - {name: app, agent: exec, command: [/bin/app]}\n"
      "  - {name: worker, agent: exec, command: [/bin/w]}\n"
      "  - {name: db, agent: exec, command: [/bin/db]}\n"
      "  - {name: off, agent: exec, command: [/bin/off], enabled: false}\n"
      "constraints:\n"
      "  - {colocate: worker, apart: app}\n"
      "  - {colocate: db, with: app}\n";
  Fixture f(yaml, 3);
  f.in.running["app"] = {{"n2", false}};
  const std::string app_node = f.where("app").front();
  ASSERT_EQ(app_node, "n2");
  EXPECT_EQ(placement_obstacle(f.in, "worker", "n2"),
            "worker is colocated apart from app, and app runs on n2");
  EXPECT_EQ(placement_obstacle(f.in, "worker", "n1"), "");
  EXPECT_EQ(placement_obstacle(f.in, "db", "n3"),
            "db is colocated with app, which does not run on n3");
  EXPECT_EQ(placement_obstacle(f.in, "off", "n1"), "off is disabled in the resources file");
  f.node("n3").standby = true;
  EXPECT_EQ(placement_obstacle(f.in, "worker", "n3"), "node n3 is in standby");
  f.node("n1").online = false;
  EXPECT_EQ(placement_obstacle(f.in, "worker", "n1"), "node n1 is offline");
  f.node("n1").online = true;
  f.in.bans["worker"] = {"n1"};
  EXPECT_EQ(placement_obstacle(f.in, "worker", "n1"),
            "worker is banned from n1 (bulwark resource clear worker)");
  f.in.bans.clear();
  f.in.fail_counts["worker"]["n1"] = 3;
  EXPECT_EQ(placement_obstacle(f.in, "worker", "n1"),
            "worker failed 3 times on n1 (migration_threshold 3; bulwark resource cleanup worker "
            "forgets them)");
  f.in.fail_counts.clear();
  f.in.disabled = {"worker"};
  EXPECT_EQ(placement_obstacle(f.in, "worker", "n1"),
            "worker is disabled (bulwark resource enable worker)");
  EXPECT_TRUE(f.place().resources.at("worker").nodes.empty());
  EXPECT_EQ(f.place().resources.at("worker").reason, "disabled");
  f.in.disabled.clear();
  EXPECT_EQ(placement_obstacle(f.in, "worker", "n9"), "no node named n9");
}

}  // namespace
}  // namespace bulwark
