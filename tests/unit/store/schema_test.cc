// Tests of the cluster state schema: record encodings, strict decoding, and
// how the typed state is built from the raw keys of the prefix.
#include "store/schema.h"

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>

#include "classes/registry/agent_classes.h"
#include "store/etcd_client.h"

namespace bulwark {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(SchemaTest, KeysLiveUnderThePrefix) {
  const Schema s("/bulwark/demo");
  EXPECT_EQ(s.root(), "/bulwark/demo/");
  EXPECT_EQ(s.schema_key(), "/bulwark/demo/schema");
  EXPECT_EQ(s.nodes_prefix(), "/bulwark/demo/nodes/");
  EXPECT_EQ(s.node_key("n1"), "/bulwark/demo/nodes/n1");
  EXPECT_EQ(s.coordinator_key(), "/bulwark/demo/coordinator");
  EXPECT_EQ(s.liveness_key(), "/bulwark/demo/liveness");
}

TEST(SchemaTest, NodeModesHaveStableNames) {
  for (NodeMode m : {NodeMode::kOnline, NodeMode::kStandby, NodeMode::kMaintenance}) {
    const auto back = parse_node_mode(node_mode_name(m));
    ASSERT_TRUE(back.has_value()) << node_mode_name(m);
    EXPECT_EQ(*back, m);
  }
  EXPECT_STREQ(node_mode_name(NodeMode::kMaintenance), "maintenance");
  EXPECT_FALSE(parse_node_mode("Online").has_value());
  EXPECT_FALSE(parse_node_mode("").has_value());
}

TEST(SchemaTest, NodeRecordRoundTrips) {
  NodeRecord n;
  n.name = "n2";
  n.address = "fd00::2";
  n.attributes = {{"zone", "b"}, {"rack", "r 7"}, {"k8s.io/role", "db"}};
  n.mode = NodeMode::kMaintenance;
  n.ports.api = 8400;
  n.ports.heartbeat = 8401;
  n.ports.etcd_client = 8379;
  n.ports.etcd_peer = 8380;
  n.mod_revision = 55;  // not part of the value: the store supplies it

  const auto back = Schema::decode_node(Schema::encode_node(n));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->name, n.name);
  EXPECT_EQ(back->address, n.address);
  EXPECT_EQ(back->attributes, n.attributes);
  EXPECT_EQ(back->mode, NodeMode::kMaintenance);
  EXPECT_EQ(back->ports.api, 8400);
  EXPECT_EQ(back->ports.heartbeat, 8401);
  EXPECT_EQ(back->ports.etcd_client, 8379);
  EXPECT_EQ(back->ports.etcd_peer, 8380);
  EXPECT_EQ(back->mod_revision, 0);
}

TEST(SchemaTest, NodeRecordOptionalFieldsDefault) {
  const auto n = Schema::decode_node(R"({"name": "n1", "address": "10.0.0.1"})");
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_TRUE(n->attributes.empty());
  EXPECT_EQ(n->mode, NodeMode::kOnline);
  EXPECT_EQ(n->ports.api, 7400);
  EXPECT_EQ(n->ports.etcd_peer, 2380);
  const auto partial = Schema::decode_node(
      R"({"name": "n1", "address": "10.0.0.1", "mode": "standby", "ports": {"api": 9000}})");
  ASSERT_TRUE(partial.ok()) << partial.error().message;
  EXPECT_EQ(partial->mode, NodeMode::kStandby);
  EXPECT_EQ(partial->ports.api, 9000);
  EXPECT_EQ(partial->ports.heartbeat, 7401);
}

TEST(SchemaTest, CoordinatorRecordRoundTrips) {
  CoordinatorRecord r;
  r.node = "n3";
  r.epoch = 42;
  r.acquired_wall_ms = 1700000123456;
  r.mod_revision = 77;
  const auto back = Schema::decode_coordinator(Schema::encode_coordinator(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->node, "n3");
  EXPECT_EQ(back->epoch, 42);
  EXPECT_EQ(back->acquired_wall_ms, 1700000123456);
  EXPECT_EQ(back->mod_revision, 0) << "the fencing token comes from the store, not the value";
}

TEST(SchemaTest, StatusRecordRoundTrips) {
  NodeStatusRecord r;
  r.incarnation = 77;
  r.probed = true;
  InstanceStatus plain;
  plain.state = InstanceState::kStarted;
  plain.fail_count = 2;
  plain.last_failure = "monitor: failed";
  plain.last_failure_wall_ms = 1700000000000;
  InstanceStatus told;
  told.state = InstanceState::kPromoted;
  told.promoted = true;
  told.notify.pending = "demote";
  told.notify.pending_seq = 1700000000123;
  told.notify.done = "promote";
  told.notify.done_seq = 1700000000100;
  told.notify.told = {{"n2", 1700000000050}, {"n3", 1700000000060}};
  InstanceStatus changed;
  changed.state = InstanceState::kStarted;
  changed.outdated = true;
  changed.unmanaged = true;
  changed.restart_generation = 3;
  changed.definition = "0123456789abcdef";
  r.resources = {{"api", plain}, {"db", told}, {"web", changed}};
  const std::string encoded = Schema::encode_status(r);
  // Records of resources without notifications carry nothing of them.
  EXPECT_EQ(encoded.find("notify"), encoded.rfind("notify"));
  auto back = Schema::decode_status(encoded);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->incarnation, 77U);
  EXPECT_TRUE(back->probed);
  EXPECT_EQ(back->resources, r.resources);
}

TEST(SchemaTest, LivenessRecordRoundTrips) {
  LivenessRecord r;
  r.epoch = 9;
  r.online = {{"n1", true}, {"n2", false}, {"n3", true}};
  const auto back = Schema::decode_liveness(Schema::encode_liveness(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->epoch, 9);
  EXPECT_EQ(back->online, r.online);
}

struct BadValue {
  const char* name;
  int kind;  // 0 node, 1 coordinator, 2 liveness
  const char* value;
  const char* message_part;
};

void PrintTo(const BadValue& c, std::ostream* os) { *os << c.name; }

class BadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(BadValueTest, IsRefusedWithAMessage) {
  const BadValue& tc = GetParam();
  Error e{Errc::kIo, ""};
  bool ok = true;
  switch (tc.kind) {
    case 0: {
      auto r = Schema::decode_node(tc.value);
      ok = r.ok();
      if (!ok) e = r.error();
      break;
    }
    case 1: {
      auto r = Schema::decode_coordinator(tc.value);
      ok = r.ok();
      if (!ok) e = r.error();
      break;
    }
    default: {
      auto r = Schema::decode_liveness(tc.value);
      ok = r.ok();
      if (!ok) e = r.error();
      break;
    }
  }
  ASSERT_FALSE(ok) << tc.value << " decoded";
  EXPECT_EQ(e.code, Errc::kInvalid);
  EXPECT_TRUE(contains(e.message, tc.message_part)) << e.message;
}

INSTANTIATE_TEST_SUITE_P(
    SchemaTest, BadValueTest,
    ::testing::Values(
        BadValue{"NodeGarbage", 0, "not json at all", "node record: not a JSON object"},
        // Found by fuzz_records: converting it to an integer was undefined.
        BadValue{"CoordinatorEpochOutOfRange", 1, R"({"node":"n1","epoch":1e69})",
                 "coordinator record: not a JSON object, or a number out of range"},
        BadValue{"NodeEmpty", 0, "", "node record: not a JSON object"},
        BadValue{"NodeArray", 0, R"(["n1"])", "node record: not a JSON object"},
        BadValue{"NodeMissingName", 0, R"({"address": "10.0.0.1"})", "node record: "},
        BadValue{"NodeMissingAddress", 0, R"({"name": "n1"})", "node record: "},
        BadValue{"NodeNameNotAString", 0, R"({"name": 5, "address": "10.0.0.1"})", "node record: "},
        BadValue{"NodeUnknownMode", 0, R"({"name": "n1", "address": "10.0.0.1", "mode": "zombie"})",
                 "unknown node mode"},
        BadValue{"NodeAttributeNotAString", 0,
                 R"({"name": "n1", "address": "10.0.0.1", "attributes": {"zone": 1}})",
                 "node record: "},
        BadValue{"NodePortNotANumber", 0,
                 R"({"name": "n1", "address": "10.0.0.1", "ports": {"api": "x"}})",
                 "node record: "},
        BadValue{"CoordinatorGarbage", 1, "{", "coordinator record: not a JSON object"},
        BadValue{"CoordinatorMissingNode", 1, R"({"epoch": 3})", "coordinator record: "},
        BadValue{"CoordinatorMissingEpoch", 1, R"({"node": "n1"})", "coordinator record: "},
        BadValue{"CoordinatorEpochNotANumber", 1, R"({"node": "n1", "epoch": "3"})",
                 "coordinator record: "},
        BadValue{"LivenessGarbage", 2, "null", "liveness record: not a JSON object"},
        BadValue{"LivenessMissingOnline", 2, R"({"epoch": 3})", "liveness record: "},
        BadValue{"LivenessOnlineNotBools", 2, R"({"epoch": 3, "online": {"n1": "yes"}})",
                 "liveness record: "}),
    [](const ::testing::TestParamInfo<BadValue>& info) { return info.param.name; });

KeyValue kv(const std::string& key, const std::string& value, int64_t mod_revision) {
  KeyValue k;
  k.key = key;
  k.value = value;
  k.create_revision = 1;
  k.mod_revision = mod_revision;
  k.version = 1;
  return k;
}

class BuildStateTest : public ::testing::Test {
 protected:
  void put(const std::string& key, const std::string& value, int64_t mod_revision) {
    kvs_[key] = kv(key, value, mod_revision);
  }
  static std::string node_value(const std::string& name, const std::string& address) {
    NodeRecord n;
    n.name = name;
    n.address = address;
    n.attributes = {{"zone", name == "n1" ? "a" : "b"}};
    return Schema::encode_node(n);
  }

  const Schema schema_{"/bulwark/demo"};
  std::map<std::string, KeyValue> kvs_;
};

TEST_F(BuildStateTest, EmptyPrefixIsAnUninitialisedCluster) {
  const ClusterState s = schema_.build_state(kvs_, 17);
  EXPECT_TRUE(s.loaded);
  EXPECT_EQ(s.revision, 17);
  EXPECT_EQ(s.schema_version, 0);
  EXPECT_TRUE(s.nodes.empty());
  EXPECT_FALSE(s.coordinator.has_value());
  EXPECT_FALSE(s.liveness.has_value());
  EXPECT_TRUE(s.errors.empty());
}

TEST_F(BuildStateTest, ReadsEveryRecord) {
  put(schema_.schema_key(), schema_.encode_schema("demo"), 2);
  put(schema_.node_key("n1"), node_value("n1", "10.0.0.1"), 3);
  put(schema_.node_key("n2"), node_value("n2", "10.0.0.2"), 11);
  CoordinatorRecord c;
  c.node = "n2";
  c.epoch = 4;
  c.acquired_wall_ms = 1700000000000;
  put(schema_.coordinator_key(), Schema::encode_coordinator(c), 20);
  LivenessRecord l;
  l.epoch = 4;
  l.online = {{"n1", false}, {"n2", true}};
  put(schema_.liveness_key(), Schema::encode_liveness(l), 21);
  // Keys of other clusters and reserved sub-trees are ignored.
  put("/bulwark/demo/resources/web", "{}", 22);
  put("/bulwark/other/nodes/x", node_value("x", "10.9.9.9"), 23);

  const ClusterState s = schema_.build_state(kvs_, 30);
  EXPECT_TRUE(s.errors.empty()) << s.errors.front();
  EXPECT_EQ(s.revision, 30);
  EXPECT_EQ(s.schema_version, kSchemaVersion);
  EXPECT_EQ(s.cluster_name, "demo");
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes.at("n1").address, "10.0.0.1");
  EXPECT_EQ(s.nodes.at("n1").mod_revision, 3);
  EXPECT_EQ(s.nodes.at("n2").mod_revision, 11);
  EXPECT_EQ(s.nodes.at("n2").attributes.at("zone"), "b");
  ASSERT_TRUE(s.coordinator.has_value());
  EXPECT_EQ(s.coordinator->node, "n2");
  EXPECT_EQ(s.coordinator->epoch, 4);
  EXPECT_EQ(s.coordinator->mod_revision, 20);
  ASSERT_TRUE(s.liveness.has_value());
  EXPECT_EQ(s.liveness->epoch, 4);
  EXPECT_EQ(s.liveness->mod_revision, 21);
  EXPECT_EQ(s.liveness->online, l.online);
}

TEST_F(BuildStateTest, ReportsMalformedValuesAndKeepsTheRest) {
  put(schema_.schema_key(), R"({"version": "one"})", 2);
  put(schema_.node_key("n1"), node_value("n1", "10.0.0.1"), 3);
  put(schema_.node_key("n2"), "{broken", 4);
  put(schema_.node_key("n3"), node_value("n4", "10.0.0.4"), 5);  // name differs from key
  put(schema_.coordinator_key(), R"({"node": "n1"})", 6);
  put(schema_.liveness_key(), "[]", 7);

  const ClusterState s = schema_.build_state(kvs_, 8);
  EXPECT_EQ(s.schema_version, 0);
  ASSERT_EQ(s.nodes.size(), 1u);
  EXPECT_TRUE(s.nodes.count("n1"));
  EXPECT_FALSE(s.nodes.count("n4")) << "a record must not appear under another name";
  EXPECT_FALSE(s.coordinator.has_value());
  EXPECT_FALSE(s.liveness.has_value());

  ASSERT_EQ(s.errors.size(), 5u);
  const auto has_error = [&](const std::string& key, const std::string& part) {
    for (const auto& e : s.errors) {
      if (e.rfind(key + ": ", 0) == 0 && contains(e, part)) return true;
    }
    return false;
  };
  EXPECT_TRUE(has_error(schema_.schema_key(), "malformed schema record"));
  EXPECT_TRUE(has_error(schema_.node_key("n2"), "node record: not a JSON object"));
  EXPECT_TRUE(has_error(schema_.node_key("n3"), "name does not match its key"));
  EXPECT_TRUE(has_error(schema_.coordinator_key(), "coordinator record: "));
  EXPECT_TRUE(has_error(schema_.liveness_key(), "liveness record: not a JSON object"));
}

TEST(PrefixEndTest, IncrementsTheLastByte) {
  EXPECT_EQ(prefix_end("abc"), "abd");
  EXPECT_EQ(prefix_end("/bulwark/demo/"), "/bulwark/demo0");
  EXPECT_EQ(prefix_end("a\x7f"), "a\x80");
}

TEST(PrefixEndTest, SkipsTrailingFfBytes) {
  EXPECT_EQ(prefix_end(std::string("ab\xff")), "ac");
  EXPECT_EQ(prefix_end(std::string("a\xff\xff")), "b");
  // Nothing left to increment: "\0" is etcd's "to the end of the key space".
  EXPECT_EQ(prefix_end(std::string("\xff")), std::string(1, '\0'));
  EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

// etcd's own words (etcdserver/api/v3rpc/rpctypes), classified once.
TEST(EtcdRefusalTest, PassingRefusalsAreUnavailableUnknownOutcomesTimeoutsTheRestFinal) {
  for (const char* m :
       {"etcdserver: no leader", "etcdserver: not leader", "etcdserver: not capable",
        "etcdserver: server stopped", "etcdserver: unhealthy cluster",
        "etcdserver: re-configuration failed due to not enough started members",
        "etcdserver: too many requests"})
    EXPECT_EQ(etcd_refusal_code(m), Errc::kUnavailable) << m;
  for (const char* m : {"etcdserver: request timed out", "etcdserver: leader changed",
                        "etcdserver: request timed out, possibly due to previous leader failure"})
    EXPECT_EQ(etcd_refusal_code(m), Errc::kTimeout) << m;
  for (const char* m : {"etcdserver: Peer URLs already exists", "etcdserver: member not found",
                        "etcdserver: request is too large", ""})
    EXPECT_EQ(etcd_refusal_code(m), Errc::kInvalid) << m;
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

TEST(SchemaTest, OperatorRecordsRoundTrip) {
  DirectivesRecord d;
  d.moves = {{"a", "n1"}};
  d.bans = {{"b", {"n2"}}};
  d.cleanups = {{"a", 2}};
  d.forced_cleanups = {{"a", 1}};
  d.restarts = {{"web", 5}};
  d.disabled = {"b"};
  d.unmanaged = {"c"};
  d.maintenance = true;
  auto back = Schema::decode_directives(Schema::encode_directives(d));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->forced_cleanups, d.forced_cleanups);
  EXPECT_EQ(back->restarts, d.restarts);
  EXPECT_EQ(back->disabled, d.disabled);
  EXPECT_EQ(back->unmanaged, d.unmanaged);
  // A record written before these fields existed reads as none of them.
  back = Schema::decode_directives(R"({"moves": {}, "bans": {}, "maintenance": false})");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->restarts.empty() && back->disabled.empty() && back->unmanaged.empty());

  ResourcesRecord r;
  r.text = "resources: []\n";
  r.source = "r.yaml";
  r.reload = {{"ocf:heartbeat:Dummy", ReloadTraits{"reload", {"fake"}}}};
  auto rb = Schema::decode_resources(Schema::encode_resources(r));
  ASSERT_TRUE(rb.ok()) << rb.error().message;
  EXPECT_EQ(rb->reload, r.reload);

  NodeRecord n;
  n.name = "n1";
  n.address = "10.0.0.1";
  n.uid = "00112233aabbccdd";
  auto nb = Schema::decode_node(Schema::encode_node(n));
  ASSERT_TRUE(nb.ok());
  EXPECT_EQ(nb->uid, n.uid);
}

// The reload traits recorded with the file reach the parsed resources of
// their agent only.
TEST(SchemaTest, ReloadTraitsAreAttachedToTheirAgentsResources) {
  ResourcesRecord r;
  r.reload = {{"ocf:heartbeat:Dummy", ReloadTraits{"reload", {"fake"}}}};
  auto c = parse_resource_config(
      "resources:\n"
      "  - {name: d, agent: 'ocf:heartbeat:Dummy'}\n"
      "  - {name: e, agent: 'ocf:heartbeat:Other'}\n"
      "  - {name: x, agent: exec, command: [/bin/x]}\n",
      "r.yaml", agent_class_syntaxes());
  ASSERT_TRUE(c.ok());
  const auto with = with_reload_traits(*c, r);
  EXPECT_EQ(with->find("d")->agent.reload.action, "reload");
  EXPECT_TRUE(with->find("e")->agent.reload.action.empty());
  EXPECT_TRUE(with->find("x")->agent.reload.action.empty());
}

// A resources record that does not decode is not "no resources": every
// node holds what runs (an empty file would stop everything).
TEST(SchemaTest, AnUndecodableResourcesRecordIsUnreadableNotAbsent) {
  const Schema schema{"/bulwark/demo"};
  std::map<std::string, KeyValue> kvs;
  KeyValue k;
  k.key = schema.resources_key();
  k.value = R"({"text": 7})";
  k.mod_revision = 5;
  kvs[k.key] = k;
  const ClusterState s = schema.build_state(kvs, 9);
  EXPECT_FALSE(s.resources.has_value());
  EXPECT_TRUE(s.resources_unreadable);
  EXPECT_EQ(s.errors.size(), 1U);
}

}  // namespace
}  // namespace bulwark
