// Tests of the bulwark.yaml parser: defaults, precise error positions, the
// validation rules, the render/parse round trip, and that the configuration
// reference documents every keyword.
#include "core/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <ostream>
#include <sstream>
#include <string>

#include "docs_reference.h"

namespace bulwark {
namespace {

// Config files in these tests "live" in a directory that need not exist: the
// parser only uses the path for messages and to anchor relative paths.
constexpr const char* kPath = "/etc/bulwark/bulwark.yaml";

constexpr const char* kMinimal =
    "cluster:\n"
    "  name: demo\n"
    "nodes:\n"
    "  - name: n1\n"
    "    address: 10.0.0.1\n"
    "  - name: n2\n"
    "    address: 10.0.0.2\n"
    "  - name: n3\n"
    "    address: fd00::3\n";

Config parse_ok(const std::string& text, const std::string& path = kPath) {
  auto c = parse_config(text, path);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Config{};
}

// Parses text that must be refused and returns the message.
std::string parse_error(const std::string& text, const std::string& path = kPath) {
  auto c = parse_config(text, path);
  EXPECT_FALSE(c.ok()) << "expected an error for:\n" << text;
  if (c.ok()) return "";
  EXPECT_EQ(c.error().code, Errc::kInvalid);
  return c.error().message;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(ConfigTest, MinimalConfigGetsDefaults) {
  const Config c = parse_ok(kMinimal);
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.cluster_name, "demo");
  EXPECT_EQ(c.heartbeat_ms, 50);
  EXPECT_EQ(c.lease_ms, 300);
  EXPECT_EQ(c.default_ports.api, 7400);
  EXPECT_EQ(c.default_ports.heartbeat, 7401);
  EXPECT_EQ(c.default_ports.etcd_client, 2379);
  EXPECT_EQ(c.default_ports.etcd_peer, 2380);
  EXPECT_EQ(c.store.mode, StoreMode::kEmbedded);
  EXPECT_EQ(c.store.prefix, "/bulwark/demo");
  EXPECT_EQ(c.store.etcd_heartbeat_ms, 50);
  EXPECT_EQ(c.store.etcd_election_ms, 300);
  EXPECT_TRUE(c.store.endpoints.empty());
  // Relative defaults are anchored at the directory of the file.
  EXPECT_EQ(c.secret_file, "/etc/bulwark/secret");
  EXPECT_EQ(c.token_file, "/etc/bulwark/admin.token");
  EXPECT_EQ(c.tls_dir, "/etc/bulwark/tls");
  EXPECT_EQ(c.store.data_dir, "/etc/bulwark/data");
  EXPECT_EQ(c.ca_file(), "/etc/bulwark/tls/ca.crt");
  EXPECT_EQ(c.node_data_dir("n2"), "/etc/bulwark/data/n2");

  ASSERT_EQ(c.nodes.size(), 3u);
  EXPECT_EQ(c.nodes[0].name, "n1");
  EXPECT_EQ(c.nodes[0].address, "10.0.0.1");
  EXPECT_EQ(c.nodes[2].address, "fd00::3");
  for (const auto& n : c.nodes) {
    EXPECT_EQ(n.ports.api, 7400) << n.name;
    EXPECT_EQ(n.ports.heartbeat, 7401) << n.name;
    EXPECT_EQ(n.ports.etcd_client, 2379) << n.name;
    EXPECT_EQ(n.ports.etcd_peer, 2380) << n.name;
    EXPECT_TRUE(n.attributes.empty()) << n.name;
  }
  ASSERT_NE(c.find_node("n2"), nullptr);
  EXPECT_EQ(c.find_node("n2")->address, "10.0.0.2");
  EXPECT_EQ(c.find_node("n4"), nullptr);
}

TEST(ConfigTest, RelativePathsAreAnchoredAtTheConfigDirectory) {
  const Config c = parse_ok(
      "cluster:\n"
      "  name: demo\n"
      "  secret_file: keys/secret\n"
      "  token_file: ../shared/admin.token\n"
      "  tls_dir: /srv/tls\n"
      "store:\n"
      "  data_dir: ./var/data\n"
      "nodes:\n"
      "  - name: n1\n"
      "    address: 10.0.0.1\n",
      "/opt/cluster/conf/bulwark.yaml");
  EXPECT_EQ(c.secret_file, "/opt/cluster/conf/keys/secret");
  EXPECT_EQ(c.token_file, "/opt/cluster/shared/admin.token");
  EXPECT_EQ(c.tls_dir, "/srv/tls");
  EXPECT_EQ(c.store.data_dir, "/opt/cluster/conf/var/data");
}

TEST(ConfigTest, ExplicitValuesOverrideDefaults) {
  const Config c = parse_ok(
      "cluster:\n"
      "  name: prod-1\n"
      "  heartbeat_ms: 20\n"
      "  lease_ms: 100\n"
      "ports:\n"
      "  api: 8400\n"
      "  heartbeat: 8401\n"
      "store:\n"
      "  prefix: /ha/prod\n"
      "  etcd_heartbeat_ms: 100\n"
      "  etcd_election_ms: 1000\n"
      "nodes:\n"
      "  - name: n1\n"
      "    address: 10.0.0.1\n"
      "    attributes:\n"
      "      zone: a\n"
      "      rack: r7\n"
      "  - name: n2\n"
      "    address: 10.0.0.1\n"
      "    ports:\n"
      "      api: 9400\n"
      "      heartbeat: 9401\n"
      "      etcd_client: 9379\n"
      "      etcd_peer: 9380\n");
  EXPECT_EQ(c.heartbeat_ms, 20);
  EXPECT_EQ(c.lease_ms, 100);
  EXPECT_EQ(c.store.prefix, "/ha/prod");
  EXPECT_EQ(c.store.etcd_heartbeat_ms, 100);
  EXPECT_EQ(c.store.etcd_election_ms, 1000);
  ASSERT_EQ(c.nodes.size(), 2u);
  // Nodes inherit the top-level ports section, then apply their own.
  EXPECT_EQ(c.nodes[0].ports.api, 8400);
  EXPECT_EQ(c.nodes[0].ports.heartbeat, 8401);
  EXPECT_EQ(c.nodes[0].ports.etcd_client, 2379);
  EXPECT_EQ(c.nodes[1].ports.api, 9400);
  EXPECT_EQ(c.nodes[1].ports.etcd_peer, 9380);
  const std::map<std::string, std::string> attrs = {{"rack", "r7"}, {"zone", "a"}};
  EXPECT_EQ(c.nodes[0].attributes, attrs);
}

// Unknown keys are refused with the position of the key itself, so a typo is
// found at once. Lines and columns count from 1.
struct UnknownKeyCase {
  const char* name;
  const char* text;
  const char* position;  // "LINE:COLUMN"
  const char* key;
};

void PrintTo(const UnknownKeyCase& c, std::ostream* os) { *os << c.name; }

class UnknownKeyTest : public ::testing::TestWithParam<UnknownKeyCase> {};

TEST_P(UnknownKeyTest, PointsAtTheKey) {
  const UnknownKeyCase& tc = GetParam();
  const std::string msg = parse_error(tc.text);
  const std::string expected = std::string(kPath) + ":" + tc.position + ": unknown key";
  EXPECT_TRUE(starts_with(msg, expected))
      << "message: " << msg << "\nexpected prefix: " << expected;
  EXPECT_TRUE(contains(msg, std::string("'") + tc.key + "'")) << msg;
}

INSTANTIATE_TEST_SUITE_P(ConfigTest, UnknownKeyTest,
                         ::testing::Values(UnknownKeyCase{"TopLevel",
                                                          "cluster:\n"
                                                          "  name: demo\n"
                                                          "nodez:\n"
                                                          "  - name: n1\n"
                                                          "    address: 10.0.0.1\n",
                                                          "3:1", "nodez"},
                                           UnknownKeyCase{"Cluster",
                                                          "cluster:\n"
                                                          "  name: demo\n"
                                                          "  lease: 300\n"
                                                          "nodes:\n"
                                                          "  - name: n1\n"
                                                          "    address: 10.0.0.1\n",
                                                          "3:3", "lease"},
                                           UnknownKeyCase{"Store",
                                                          "cluster:\n"
                                                          "  name: demo\n"
                                                          "store:\n"
                                                          "  mode: embedded\n"
                                                          "  # comments count as lines\n"
                                                          "  datadir: /var/lib/bulwark\n"
                                                          "nodes:\n"
                                                          "  - name: n1\n"
                                                          "    address: 10.0.0.1\n",
                                                          "6:3", "datadir"},
                                           UnknownKeyCase{"Ports",
                                                          "cluster:\n"
                                                          "  name: demo\n"
                                                          "ports:\n"
                                                          "  http: 80\n"
                                                          "nodes:\n"
                                                          "  - name: n1\n"
                                                          "    address: 10.0.0.1\n",
                                                          "4:3", "http"},
                                           UnknownKeyCase{"SecondNode",
                                                          "cluster:\n"
                                                          "  name: demo\n"
                                                          "nodes:\n"
                                                          "  - name: n1\n"
                                                          "    address: 10.0.0.1\n"
                                                          "  - name: n2\n"
                                                          "    address: 10.0.0.2\n"
                                                          "    zone: b\n",
                                                          "8:5", "zone"},
                                           UnknownKeyCase{"NodePorts",
                                                          "cluster:\n"
                                                          "  name: demo\n"
                                                          "nodes:\n"
                                                          "  - name: n1\n"
                                                          "    address: 10.0.0.1\n"
                                                          "    ports:\n"
                                                          "      api: 7400\n"
                                                          "      ssh: 22\n",
                                                          "8:7", "ssh"}),
                         [](const ::testing::TestParamInfo<UnknownKeyCase>& info) {
                           return info.param.name;
                         });

// The remaining validation rules: each case must be refused with a message
// that names the problem and, where a value is at fault, its position.
struct InvalidCase {
  const char* name;
  const char* text;
  const char* position;  // "LINE:COLUMN", or "" when not checked
  const char* message_part;
};

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << c.name; }

class InvalidConfigTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidConfigTest, IsRefused) {
  const InvalidCase& tc = GetParam();
  const std::string msg = parse_error(tc.text);
  const std::string prefix = std::string(kPath) + ":" + tc.position;
  EXPECT_TRUE(starts_with(msg, prefix)) << "message: " << msg << "\nexpected prefix: " << prefix;
  EXPECT_TRUE(contains(msg, tc.message_part))
      << "message: " << msg << "\nexpected to contain: " << tc.message_part;
}

INSTANTIATE_TEST_SUITE_P(
    ConfigTest, InvalidConfigTest,
    ::testing::Values(
        InvalidCase{"DuplicateNodeName",
                    "cluster:\n"
                    "  name: demo\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.2\n",
                    "6:11: ", "duplicate node name 'n1'"},
        InvalidCase{"AddressOctetOutOfRange",
                    "cluster:\n"
                    "  name: demo\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 300.1.1.1\n",
                    "5:14: ", "address '300.1.1.1' is not an IPv4 or IPv6 address"},
        InvalidCase{"AddressIsAHostName",
                    "cluster:\n"
                    "  name: demo\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: host.example\n",
                    "5:14: ", "address 'host.example' is not an IPv4 or IPv6 address"},
        InvalidCase{"MissingClusterName",
                    "cluster:\n"
                    "  heartbeat_ms: 50\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "", "cluster.name is required"},
        InvalidCase{"MissingClusterSection",
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "", "the cluster section is required"},
        InvalidCase{"MissingNodes",
                    "cluster:\n"
                    "  name: demo\n",
                    "", "the nodes section is required"},
        InvalidCase{"BadClusterName",
                    "cluster:\n"
                    "  name: Demo_Cluster\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "2:9: ", "cluster.name must be"},
        InvalidCase{"LeaseShorterThanTwoHeartbeats",
                    "cluster:\n"
                    "  name: demo\n"
                    "  heartbeat_ms: 100\n"
                    "  lease_ms: 199\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "4:13: ", "lease_ms must be at least twice heartbeat_ms (100)"},
        InvalidCase{"DefaultLeaseShorterThanTwoHeartbeats",
                    "cluster:\n"
                    "  name: demo\n"
                    "  heartbeat_ms: 200\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "", "lease_ms must be at least twice heartbeat_ms (200)"},
        InvalidCase{"EtcdElectionShorterThanFiveHeartbeats",
                    "cluster:\n"
                    "  name: demo\n"
                    "store:\n"
                    "  etcd_heartbeat_ms: 100\n"
                    "  etcd_election_ms: 499\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "5:21: ", "etcd_election_ms must be at least 5 times etcd_heartbeat_ms"},
        InvalidCase{"ExternalStoreWithoutEndpoints",
                    "cluster:\n"
                    "  name: demo\n"
                    "store:\n"
                    "  mode: external\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "", "store.mode external needs store.endpoints"},
        InvalidCase{"PlainHttpEndpoint",
                    "cluster:\n"
                    "  name: demo\n"
                    "store:\n"
                    "  mode: external\n"
                    "  endpoints:\n"
                    "    - https://10.0.0.9:2379\n"
                    "    - http://10.0.0.10:2379\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "7:7: ", "store endpoint must be an https:// URL"},
        InvalidCase{"EndpointsInEmbeddedMode",
                    "cluster:\n"
                    "  name: demo\n"
                    "store:\n"
                    "  endpoints: [https://10.0.0.9:2379]\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "4:14: ", "store.endpoints is only for mode external"},
        InvalidCase{"UnknownStoreMode",
                    "cluster:\n"
                    "  name: demo\n"
                    "store:\n"
                    "  mode: raft\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "4:9: ", "store.mode must be embedded or external"},
        InvalidCase{"HeartbeatNotAnInteger",
                    "cluster:\n"
                    "  name: demo\n"
                    "  heartbeat_ms: fifty\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "3:17: ", "heartbeat_ms must be an integer"},
        InvalidCase{"HeartbeatFractional",
                    "cluster:\n"
                    "  name: demo\n"
                    "  heartbeat_ms: 50.5\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "3:17: ", "heartbeat_ms must be an integer"},
        InvalidCase{"HeartbeatAList",
                    "cluster:\n"
                    "  name: demo\n"
                    "  heartbeat_ms: [50]\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "3:17: ", "heartbeat_ms must be an integer"},
        InvalidCase{"HeartbeatOutOfRange",
                    "cluster:\n"
                    "  name: demo\n"
                    "  heartbeat_ms: 1\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "3:17: ", "heartbeat_ms must be between 5 and 10000"},
        InvalidCase{
            "TwoNodesShareAddressAndPort",
            "cluster:\n"
            "  name: demo\n"
            "nodes:\n"
            "  - name: n1\n"
            "    address: 10.0.0.1\n"
            "  - name: n2\n"
            "    address: 10.0.0.1\n"
            "    ports:\n"
            "      api: 8400\n"
            "      heartbeat: 8401\n"
            "      etcd_client: 8379\n"
            "      etcd_peer: 2380\n",
            "6:5: ", "node 'n2' uses address 10.0.0.1 port 2380 that another node uses too"},
        InvalidCase{"PortsNotDistinct",
                    "cluster:\n"
                    "  name: demo\n"
                    "ports:\n"
                    "  api: 2379\n"
                    "nodes:\n"
                    "  - name: n1\n"
                    "    address: 10.0.0.1\n",
                    "4:3: ", "ports: ports must be distinct"},
        InvalidCase{"EmptyNodeList",
                    "cluster:\n"
                    "  name: demo\n"
                    "nodes: []\n",
                    "3:8: ", "nodes must be a non-empty list"},
        InvalidCase{"NodeWithoutAddress",
                    "cluster:\n"
                    "  name: demo\n"
                    "nodes:\n"
                    "  - name: n1\n",
                    "4:5: ", "nodes[0].address is required"},
        InvalidCase{"BadNodeName",
                    "cluster:\n"
                    "  name: demo\n"
                    "nodes:\n"
                    "  - name: -n1\n"
                    "    address: 10.0.0.1\n",
                    "4:11: ", "node name '-n1' must be"},
        InvalidCase{"NotAMapping",
                    "- just\n"
                    "- a list\n",
                    "1:1: ", "the configuration must be a mapping"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.name; });

TEST(ConfigTest, YamlSyntaxErrorHasFileLineColumn) {
  // A second ':' in a plain value is an illegal map value; YAML reports it
  // at that colon (line 3, column 14).
  const std::string msg = parse_error(
      "cluster:\n"
      "  name: demo\n"
      "  lease_ms: 3: 00\n"
      "nodes:\n"
      "  - name: n1\n"
      "    address: 10.0.0.1\n");
  EXPECT_TRUE(starts_with(msg, std::string(kPath) + ":3:14: ")) << msg;

  const std::string flow = parse_error(
      "cluster:\n"
      "  name: demo\n"
      "nodes: [\n");
  EXPECT_TRUE(starts_with(flow, std::string(kPath) + ":")) << flow;
  EXPECT_TRUE(contains(flow, "end of sequence flow not found")) << flow;
}

TEST(ConfigTest, RenderedConfigParsesBackToTheSameConfig) {
  const Config original = parse_ok(
      "cluster:\n"
      "  name: roundtrip\n"
      "  heartbeat_ms: 25\n"
      "  lease_ms: 150\n"
      "  secret_file: keys/secret\n"
      "  tls_dir: /srv/tls\n"
      "ports:\n"
      "  api: 8400\n"
      "store:\n"
      "  data_dir: /var/lib/bulwark\n"
      "  etcd_heartbeat_ms: 40\n"
      "  etcd_election_ms: 400\n"
      "nodes:\n"
      "  - name: n1\n"
      "    address: 10.0.0.1\n"
      "    attributes:\n"
      "      zone: a\n"
      "      team: \"db ops\"\n"
      "  - name: n2\n"
      "    address: fd00::2\n"
      "  - name: n3\n"
      "    address: 10.0.0.1\n"
      "    attributes:\n"
      "      zone: \"yes\"\n"
      "    ports: {api: 9400, heartbeat: 9401, etcd_client: 9379, etcd_peer: 9380}\n",
      "/opt/rt/bulwark.yaml");
  const std::string rendered = render_config(original);
  auto back = parse_config(rendered, "/opt/rt/bulwark.yaml");
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << rendered;

  EXPECT_EQ(back->cluster_name, original.cluster_name);
  EXPECT_EQ(back->heartbeat_ms, 25);
  EXPECT_EQ(back->lease_ms, 150);
  EXPECT_EQ(back->secret_file, original.secret_file);
  EXPECT_EQ(back->token_file, original.token_file);
  EXPECT_EQ(back->tls_dir, original.tls_dir);
  EXPECT_EQ(back->store.data_dir, original.store.data_dir);
  EXPECT_EQ(back->store.etcd_heartbeat_ms, 40);
  EXPECT_EQ(back->store.etcd_election_ms, 400);
  EXPECT_EQ(back->store.prefix, original.store.prefix);
  EXPECT_EQ(back->default_ports.api, 8400);
  ASSERT_EQ(back->nodes.size(), original.nodes.size());
  for (std::size_t i = 0; i < original.nodes.size(); ++i) {
    const NodeConfig& a = original.nodes[i];
    const NodeConfig& b = back->nodes[i];
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.address, a.address);
    EXPECT_EQ(b.attributes, a.attributes) << a.name;
    EXPECT_EQ(b.ports.api, a.ports.api) << a.name;
    EXPECT_EQ(b.ports.heartbeat, a.ports.heartbeat) << a.name;
    EXPECT_EQ(b.ports.etcd_client, a.ports.etcd_client) << a.name;
    EXPECT_EQ(b.ports.etcd_peer, a.ports.etcd_peer) << a.name;
  }
  // A string that looks like a YAML boolean stays a string.
  EXPECT_EQ(back->nodes[2].attributes.at("zone"), "yes");
  EXPECT_EQ(back->nodes[2].ports.api, 9400);
  // Rendering is stable.
  EXPECT_EQ(render_config(*back), rendered);
}

TEST(ConfigTest, RenderedExternalStoreConfigParsesBack) {
  const Config original = parse_ok(
      "cluster:\n"
      "  name: ext\n"
      "store:\n"
      "  mode: external\n"
      "  endpoints: [https://10.0.0.9:2379, https://10.0.0.10:2379]\n"
      "  prefix: /ha/ext\n"
      "  etcd_binary: /opt/etcd/bin/etcd\n"
      "  request_timeout_ms: 5000\n"
      "  ca_file: pki/etcd-ca.crt\n"
      "  cert_file: /etc/pki/client.crt\n"
      "  key_file: /etc/pki/client.key\n"
      "nodes:\n"
      "  - name: n1\n"
      "    address: 10.0.0.1\n");
  const std::string rendered = render_config(original);
  auto back = parse_config(rendered, kPath);
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << rendered;
  EXPECT_EQ(back->store.mode, StoreMode::kExternal);
  EXPECT_EQ(back->store.endpoints, original.store.endpoints);
  EXPECT_EQ(back->store.prefix, "/ha/ext");
  EXPECT_EQ(back->store.etcd_binary, "/opt/etcd/bin/etcd");
  EXPECT_EQ(back->store.request_timeout_ms, 5000);
  EXPECT_EQ(back->store.ca_file, "/etc/bulwark/pki/etcd-ca.crt");
  EXPECT_EQ(back->store.cert_file, "/etc/pki/client.crt");
  EXPECT_EQ(back->store.key_file, "/etc/pki/client.key");
}

// The configuration reference must name every keyword the parser accepts, so
// that a new keyword cannot ship undocumented. This fails until
// docs/configuration.md is written.
TEST(ConfigDocsTest, ReferenceListsEveryKeyword) {
  const std::string heading = "# Configuration reference: `bulwark.yaml`";
  expect_documented(config_keywords(), heading);
  // The sections themselves must be named too.
  const std::vector<ConfigKeyword> sections = {{"", "cluster", "", "", ""},
                                               {"", "store", "", "", ""},
                                               {"", "ports", "", "", ""},
                                               {"", "nodes", "", "", ""}};
  expect_documented(sections, heading);
}

TEST(ConfigTest, KeywordTableCoversEverySection) {
  // The parser derives its allowed keys from the table; a keyword missing
  // from it would be refused as unknown. Parse a file using every keyword.
  const Config c = parse_ok(
      "cluster:\n"
      "  name: demo\n"
      "  secret_file: s\n"
      "  token_file: t\n"
      "  tls_dir: tls\n"
      "  heartbeat_ms: 50\n"
      "  lease_ms: 300\n"
      "store:\n"
      "  mode: external\n"
      "  data_dir: d\n"
      "  etcd_binary: /opt/etcd\n"
      "  etcd_heartbeat_ms: 50\n"
      "  etcd_election_ms: 300\n"
      "  request_timeout_ms: 1500\n"
      "  prefix: /x\n"
      "  endpoints: [https://10.0.0.9:2379]\n"
      "  ca_file: ca.pem\n"
      "  cert_file: c.pem\n"
      "  key_file: k.pem\n"
      "ports:\n"
      "  api: 1\n"
      "  heartbeat: 2\n"
      "  etcd_client: 3\n"
      "  etcd_peer: 4\n"
      "nodes:\n"
      "  - name: n1\n"
      "    address: 10.0.0.1\n"
      "    attributes: {zone: a}\n"
      "    ports: {api: 5, heartbeat: 6, etcd_client: 7, etcd_peer: 8}\n");
  EXPECT_EQ(c.store.mode, StoreMode::kExternal);
  EXPECT_EQ(c.store.etcd_binary, "/opt/etcd");
  EXPECT_EQ(c.store.request_timeout_ms, 1500);
  EXPECT_EQ(c.store.ca_file, "/etc/bulwark/ca.pem");
  EXPECT_EQ(c.store.key_file, "/etc/bulwark/k.pem");
  ASSERT_EQ(c.store.endpoints.size(), 1u);
  EXPECT_EQ(c.nodes[0].ports.etcd_peer, 8);
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

// Found by fuzz_config: a complex key ("? ...") made yaml-cpp throw out of
// the parser. Every key position must refuse it with file:line:column.
TEST(ConfigTest, ComplexKeysAreRefusedNotThrown) {
  const std::string top =
      parse_error("? [a, b]\n: x\ncluster: {name: c}\nnodes: [{name: n1, address: 10.0.0.1}]\n");
  EXPECT_TRUE(starts_with(top, std::string(kPath) + ":1:")) << top;
  EXPECT_TRUE(contains(top, "keys must be plain strings")) << top;
  const std::string section =
      parse_error("cluster:\n  name: c\n  ? [x]\n  : y\nnodes: [{name: n1, address: 10.0.0.1}]\n");
  EXPECT_TRUE(starts_with(section, std::string(kPath) + ":3:")) << section;
  const std::string attrs = parse_error(
      "cluster: {name: c}\nnodes:\n  - name: n1\n    address: 10.0.0.1\n    attributes: {? [k]: "
      "v}\n");
  EXPECT_TRUE(contains(attrs, "keys must be plain strings")) << attrs;
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

constexpr const char* kFenced =
    "cluster: {name: demo}\n"
    "fencing:\n"
    "  command: [/usr/sbin/fence_ipmilan]\n"
    "  params: {username: admin, lanplus: \"1\"}\n"
    "  action: reboot\n"
    "  timeout_ms: 20000\n"
    "nodes:\n"
    "  - {name: n1, address: 10.0.0.1, fence: {ip: 10.9.0.1}}\n"
    "  - {name: n2, address: 10.0.0.2}\n";

TEST(ConfigTest, FencingAndNodeFenceOptionsParseAndRenderBack) {
  const Config c = parse_ok(kFenced);
  EXPECT_EQ(c.fencing.command, std::vector<std::string>{"/usr/sbin/fence_ipmilan"});
  EXPECT_EQ(c.fencing.params.at("lanplus"), "1");
  EXPECT_EQ(c.fencing.action, "reboot");
  EXPECT_EQ(c.fencing.timeout_ms, 20000);
  EXPECT_EQ(c.nodes[0].fence.at("ip"), "10.9.0.1");
  EXPECT_TRUE(c.nodes[1].fence.empty());
  auto back = parse_config(render_config(c), kPath);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->fencing.command, c.fencing.command);
  EXPECT_EQ(back->fencing.params, c.fencing.params);
  EXPECT_EQ(back->fencing.action, "reboot");
  EXPECT_EQ(back->nodes[0].fence, c.nodes[0].fence);
  EXPECT_TRUE(parse_ok(kMinimal).fencing.command.empty());  // no fencing by default
}

TEST(ConfigTest, WatchdogParsesRendersBackAndIsChecked) {
  const Config c = parse_ok(
      "cluster: {name: demo}\nwatchdog: {device: /dev/watchdog, timeout_ms: 5000}\n"
      "nodes: [{name: n1, address: 10.0.0.1}]\n");
  EXPECT_EQ(c.watchdog.device, "/dev/watchdog");
  EXPECT_EQ(c.watchdog.timeout_ms, 5000);
  auto back = parse_config(render_config(c), kPath);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->watchdog.device, "/dev/watchdog");
  EXPECT_EQ(back->watchdog.timeout_ms, 5000);
  EXPECT_TRUE(parse_ok(kMinimal).watchdog.device.empty());
  EXPECT_NE(parse_error("cluster: {name: demo}\nwatchdog: {device: watchdog}\n"
                        "nodes: [{name: n1, address: 10.0.0.1}]\n")
                .find(":2:20: watchdog.device must be an absolute path"),
            std::string::npos);
}

TEST(ConfigTest, OcfRootParsesRendersBackAndIsChecked) {
  const Config c = parse_ok(
      "cluster: {name: demo}\nagents: {ocf_root: /opt/ocf}\n"
      "nodes: [{name: n1, address: 10.0.0.1}]\n");
  EXPECT_EQ(c.ocf_root, "/opt/ocf");
  auto back = parse_config(render_config(c), kPath);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->ocf_root, "/opt/ocf");
  const Config d = parse_ok(kMinimal);
  EXPECT_EQ(d.ocf_root, "/usr/lib/ocf");
  EXPECT_EQ(render_config(d).find("agents"), std::string::npos);  // the default is not written
  EXPECT_NE(parse_error("cluster: {name: demo}\nagents: {ocf_root: ocf}\n"
                        "nodes: [{name: n1, address: 10.0.0.1}]\n")
                .find(":2:20: agents.ocf_root must be an absolute path"),
            std::string::npos);
}

TEST(ConfigTest, BadFencingIsRefusedWithItsPosition) {
  const auto with = [](const std::string& fencing) {
    return "cluster: {name: demo}\nfencing:\n" + fencing +
           "nodes: [{name: n1, address: 10.0.0.1}]\n";
  };
  EXPECT_EQ(parse_error(with("  command: [fence_ipmilan]\n")),
            std::string(kPath) +
                ":3:12: fencing.command must start with an absolute path to the fence agent");
  EXPECT_NE(parse_error(with("  command: [/bin/true]\n  action: halt\n")).find(":4:11:"),
            std::string::npos);
  EXPECT_NE(parse_error(with("  params: {a: b}\n")).find("command"), std::string::npos);
  EXPECT_NE(parse_error(with("  command: [/bin/true]\n  timeout_ms: 5\n")).find(":4:"),
            std::string::npos);
  EXPECT_NE(parse_error("cluster: {name: demo}\n"
                        "nodes: [{name: n1, address: 10.0.0.1, fence: [a]}]\n")
                .find("nodes[0].fence must be a mapping"),
            std::string::npos);
}

}  // namespace
}  // namespace bulwark
