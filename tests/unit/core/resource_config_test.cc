// Tests of the resources file (`bulwark apply`): the issue's example, every
// refusal with its position and rule, and the keyword reference.
#include "core/resource_config.h"

#include <gtest/gtest.h>

#include "classes/registry/agent_classes.h"
#include "docs_reference.h"

namespace bulwark {
namespace {

constexpr const char* kPath = "/etc/bulwark/resources.yaml";

constexpr const char* kExample =
    "resources:\n"
    "  - name: web\n"
    "    agent: exec\n"
    "    command: [/usr/bin/python3, -m, http.server, --bind, \"${BULWARK_NODE_ADDRESS}\", "
    "\"8000\"]\n"
    "    clone: {}\n"
    "    monitor: {interval_ms: 1000, timeout_ms: 2000}\n"
    "  - name: volume\n"
    "    agent: exec\n"
    "    command: [/usr/local/bin/volume-worker]\n"
    "    singleton: true\n"
    "  - name: dummy\n"
    "    agent: ocf:heartbeat:Dummy\n"
    "    params: {fake: \"1\"}\n"
    "    singleton: true\n"
    "constraints:\n"
    "  - {colocate: volume, with: web}\n"
    "  - {order: [web, volume]}\n"
    "  - {location: volume, prefer: {zone: rack1}}\n";

ResourceConfig parse_ok(const std::string& text) {
  auto c = parse_resource_config(text, kPath, agent_class_syntaxes());
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : ResourceConfig{};
}

TEST(ResourceConfigTest, TheIssueExampleParses) {
  const ResourceConfig c = parse_ok(kExample);
  ASSERT_EQ(c.resources.size(), 3U);
  const ResourceSpec& web = c.resources[0];
  EXPECT_EQ(web.kind, ResourceKind::kClone);
  EXPECT_FALSE(web.exclusive());
  EXPECT_EQ(web.agent.command[4], "${BULWARK_NODE_ADDRESS}");  // expanded per node, later
  EXPECT_EQ(web.monitor.interval_ms, 1000);
  EXPECT_EQ(c.resources[1].kind, ResourceKind::kSingleton);
  const ResourceSpec& dummy = c.resources[2];
  EXPECT_EQ(dummy.agent.agent_class, AgentClass::kOcf);
  EXPECT_EQ(dummy.agent.provider, "heartbeat");
  EXPECT_EQ(dummy.agent.type, "Dummy");
  EXPECT_EQ(dummy.agent.params.at("fake"), "1");
  ASSERT_EQ(c.colocations.size(), 1U);
  EXPECT_EQ(c.colocations[0].other, "web");
  ASSERT_EQ(c.orders.size(), 1U);
  ASSERT_EQ(c.locations.size(), 1U);
  EXPECT_EQ(c.locations[0].attributes.at("zone"), "rack1");
  EXPECT_FALSE(c.locations[0].avoid);
}

TEST(ResourceConfigTest, DefaultsAreTheSafeOnes) {
  const ResourceConfig c = parse_ok("resources: [{name: r, agent: 'systemd:nginx.service'}]\n");
  const ResourceSpec& r = c.resources[0];
  EXPECT_EQ(r.kind, ResourceKind::kSingleton);  // exclusive unless asked otherwise
  EXPECT_TRUE(r.exclusive());
  EXPECT_EQ(r.agent.unit, "nginx.service");
  EXPECT_EQ(r.migration_threshold, 3);
  EXPECT_TRUE(r.enabled);
  EXPECT_TRUE(parse_ok("").resources.empty());
}

TEST(ResourceConfigTest, PromotableAndGroups) {
  const ResourceConfig c = parse_ok(
      "resources:\n"
      "  - {name: db, agent: 'ocf:heartbeat:pgsql', promotable: {max: 3, promoted: 1}}\n"
      "  - {name: vip, agent: exec, command: [/bin/true]}\n"
      "  - {name: svc, agent: exec, command: [/bin/true]}\n"
      "groups:\n"
      "  - {name: front, resources: [vip, svc]}\n"
      "constraints:\n"
      "  - {colocate: front, apart: db}\n"
      "  - {location: front, avoid: {node: n3}, score: 500}\n");
  EXPECT_EQ(c.resources[0].kind, ResourceKind::kPromotable);
  EXPECT_EQ(c.resources[0].clone_max, 3);
  EXPECT_TRUE(c.resources[0].exclusive());  // its promoted instance is
  ASSERT_EQ(c.groups.size(), 1U);
  EXPECT_EQ(c.groups[0].resources, (std::vector<std::string>{"vip", "svc"}));
  EXPECT_TRUE(c.colocations[0].apart);
  EXPECT_EQ(c.locations[0].node, "n3");
  EXPECT_EQ(c.locations[0].score, 500);
}

TEST(ResourceConfigTest, NotifyIsForClonesOfOcfAgents) {
  const ResourceConfig c = parse_ok(
      "resources:\n"
      "  - {name: db, agent: 'ocf:heartbeat:mariadb', promotable: {notify: true},\n"
      "     notify_timeout_ms: 5000}\n"
      "  - {name: mq, agent: 'ocf:heartbeat:rabbitmq-cluster', clone: {notify: true}}\n"
      "  - {name: web, agent: 'ocf:heartbeat:apache', clone: {}}\n");
  EXPECT_TRUE(c.resources[0].notify);
  EXPECT_EQ(c.resources[0].notify_timeout_ms, 5000);
  EXPECT_TRUE(c.resources[1].notify);
  EXPECT_EQ(c.resources[1].notify_timeout_ms, 20000);
  EXPECT_FALSE(c.resources[2].notify);
}

TEST(ResourceConfigTest, VipParamsAreCheckedAndTyped) {
  const ResourceConfig c = parse_ok(
      "resources:\n"
      "  - {name: v4, agent: vip, params: {address: 192.0.2.100, prefix: '24', interface: eth0,\n"
      "     label: 'eth0:api', conflict_probe_ms: '0'}}\n"
      "  - {name: v6, agent: vip, params: {address: '2001:db8::100', interface: eth0}}\n"
      "  - {name: dev, agent: vip, params: {address: 127.0.100.1}}\n");
  const VipSpec& v4 = c.resources[0].agent.vip;
  EXPECT_EQ(c.resources[0].agent.agent_class, AgentClass::kVip);
  EXPECT_EQ(c.resources[0].kind, ResourceKind::kSingleton);
  EXPECT_EQ(v4.address, "192.0.2.100");
  EXPECT_EQ(v4.prefix, 24);
  EXPECT_EQ(v4.label, "eth0:api");
  EXPECT_EQ(v4.conflict_probe_ms, 0);
  EXPECT_FALSE(v4.ipv6);
  EXPECT_EQ(c.resources[0].monitor.interval_ms, 1000);  // a vip's own default
  const VipSpec& v6 = c.resources[1].agent.vip;
  EXPECT_TRUE(v6.ipv6);
  EXPECT_EQ(v6.prefix, 128);
  EXPECT_EQ(v6.conflict_probe_ms, 30);
  const VipSpec& dev = c.resources[2].agent.vip;
  EXPECT_TRUE(dev.loopback);
  EXPECT_EQ(dev.prefix, 32);
  EXPECT_TRUE(dev.interface.empty());
  EXPECT_TRUE(c.resources[0].agent.stop_ends_with_lease());
}

struct BadCase {
  std::string text;
  const char* message;
};

TEST(ResourceConfigTest, RefusesWithPositionAndRule) {
  const std::string r =
      "resources:\n  - {name: a, agent: exec, command: [/bin/a]}\n"
      "  - {name: b, agent: exec, command: [/bin/b]}\n";
  const BadCase cases[] = {
      {"resources: [\n", "resources.yaml:2:1: "},
      {"resource: []\n", "resources.yaml:1:1: unknown key 'resource'"},
      {"resources:\n  - {name: a, agent: lsb:foo}\n",
       "resources.yaml:2:22: unknown agent class 'lsb:foo' (expected exec, ocf:PROVIDER:TYPE, "
       "systemd:UNIT, vip or proxy)"},
      {"resources:\n  - {name: a, agent: 'ocf:heartbeat'}\n", "is not ocf:PROVIDER:TYPE"},
      {"resources:\n  - {name: a, agent: exec}\n",
       "agent exec needs command: a list starting with an absolute path"},
      {"resources:\n  - {name: a, agent: exec, command: [python3]}\n", "agent exec needs command"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a, '${BULWARK_NODE_IP}']}\n",
       "resources.yaml:2:46: unknown variable ${BULWARK_NODE_IP} (known: BULWARK_NODE, "
       "BULWARK_NODE_ADDRESS, BULWARK_RESOURCE, BULWARK_INSTANCE)"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a, '${BULWARK_NODE']}\n",
       "unterminated ${"},
      {"resources:\n  - {name: a, agent: 'ocf:x:y', command: [/bin/a]}\n",
       "command is only for agent exec"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a], clone: {}, singleton: true}\n",
       "a resource is one of singleton, clone or promotable, not several"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a], singleton: false}\n",
       "singleton: false means nothing"},
      {"resources:\n  - {name: a, agent: 'ocf:x:y', promotable: {max: 1, promoted: 2}}\n",
       "promoted must not exceed max"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a], promotable: {}}\n",
       "resources.yaml:2:59: promotable needs an ocf agent"},
      {"resources:\n  - {name: a, agent: vip}\n",
       "resources.yaml:2:5: vip needs parameter 'address'"},
      {"resources:\n  - {name: a, agent: vip, params: {address: 192.0.2.1.5, interface: e}}\n",
       "resources.yaml:2:45: vip address '192.0.2.1.5' is not an IP address"},
      {"resources:\n  - {name: a, agent: vip, params: {address: 224.0.0.1, interface: e}}\n",
       "vip address 224.0.0.1 cannot be held by a host"},
      {"resources:\n  - {name: a, agent: vip, params: {address: 192.0.2.1}}\n",
       "vip needs parameter 'interface'"},
      {"resources:\n  - {name: a, agent: vip, params: {address: 192.0.2.1, interface: e,"
       " prefix: '33'}}\n",
       "vip prefix must be an integer from 1 to 32"},
      {"resources:\n  - {name: a, agent: vip, params: {address: 192.0.2.1, interface: e,"
       " label: 'x:1'}}\n",
       "label 'x:1' must be 'e' or 'e:SUFFIX'"},
      {"resources:\n  - {name: a, agent: vip, params: {address: '2001:db8::1', interface: e,"
       " label: e}}\n",
       "labels are for IPv4 addresses only"},
      {"resources:\n  - {name: a, agent: vip, params: {address: 127.0.0.5, interface: eth0}}\n",
       "a loopback vip (127.0.0.0/8) lives on lo, not eth0"},
      {"resources:\n  - {name: a, agent: vip, params: {address: 192.0.2.1, interface: e,"
       " mac: x}}\n",
       "vip has no parameter 'mac'"},
      {"resources:\n  - {name: a, agent: vip, params: {address: 192.0.2.1, interface: e},"
       " clone: {}}\n",
       "a vip is a singleton: one node holds the address at a time"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a], clone: {notify: true}}\n",
       "resources.yaml:2:63: notify needs an ocf agent"},
      {"resources:\n  - {name: a, agent: 'ocf:x:y', notify: true}\n",
       "resources.yaml:2:33: unknown key 'notify' in resources[0]"},
      {"resources:\n  - {name: a, agent: 'ocf:x:y', clone: {notify: yes please}}\n",
       "resources.yaml:2:49: notify must be true or false"},
      {"resources:\n  - {name: A, agent: exec, command: [/bin/a]}\n",
       "resource name 'A' must be 1-63 characters"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a], colour: red}\n",
       "resources.yaml:2:47: unknown key 'colour' in resources[0]"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a], monitor: {tcp: '${X}:1'}}\n",
       "unknown variable ${X}"},
      {"resources:\n  - {name: a, agent: 'ocf:h:D', params: {ip: '${BULWARK_IP}'}}\n",
       "resources.yaml:2:46: unknown variable ${BULWARK_IP}"},
      {"resources:\n  - {name: a, agent: 'ocf:h:D', monitor: {tcp: '127.0.0.1:1'}}\n",
       "tcp and http monitors are for agent exec"},
      {r + "  - {name: a, agent: exec, command: [/bin/c]}\n",
       "resources.yaml:4:12: duplicate resource name 'a'"},
      {r + "groups: [{name: g, resources: [a, zz]}]\n",
       "resources.yaml:4:35: no resource named 'zz'"},
      {r + "groups: [{name: g, resources: [a]}, {name: h, resources: [a]}]\n",
       "'a' is already in a group"},
      {r + "groups: [{name: a, resources: [b]}]\n", "the name 'a' is already taken"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a], clone: {}}\n"
       "groups: [{name: g, resources: [a]}]\n",
       "group members must be singletons; 'a' is not"},
      {r + "constraints: [{colocate: a, with: nope}]\n",
       "resources.yaml:4:35: no resource or group named 'nope'"},
      {r + "constraints: [{colocate: a, with: a}]\n", "cannot be colocated with itself"},
      {r + "constraints: [{colocate: a}]\n", "colocate needs exactly one of with or apart"},
      {r + "constraints: [{colocate: a, with: b, order: [a, b]}]\n",
       "a constraint is exactly one of colocate, order or location"},
      {r + "constraints: [{order: [a, b]}, {order: [b, a]}]\n",
       "resources.yaml:4:14: order loop: a -> b -> a (nothing could ever start)"},
      {r + "constraints: [{order: [a]}]\n", "order needs at least two resources"},
      {r + "constraints: [{colocate: a, with: b}, {colocate: b, with: a}]\n",
       "colocation loop: a -> b -> a (use a group instead)"},
      {r + "constraints: [{colocate: a, with: b}, {colocate: a, apart: b}]\n",
       "'a' and 'b' are colocated both together and apart"},
      {r + "constraints: [{location: a}]\n", "location needs exactly one of prefer or avoid"},
      {r + "constraints: [{location: a, prefer: {}}]\n",
       "prefer must map node: NAME or attribute: VALUE"},
      {r + "constraints: [{location: a, prefer: {'bad key': x}}]\n",
       "'bad key' is not a valid attribute name"},
      {r + "constraints: [{location: a, avoid: {node: n1}, score: 0}]\n",
       "score must be between 1 and 1000000"},
      {r + "constraints: [{with: a, order: [a, b]}]\n", "with and apart belong to colocate"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_resource_config(c.text, kPath, agent_class_syntaxes());
    ASSERT_FALSE(parsed.ok()) << "accepted:\n" << c.text;
    EXPECT_NE(parsed.error().message.find(c.message), std::string::npos)
        << "input:\n"
        << c.text << "\nmessage: " << parsed.error().message << "\nexpected: " << c.message;
  }
}

// The parser knows agent classes only through what they register: here a
// class of the test's own, with a key of its own, monitor defaults, a
// parse, a check made at apply only and a check across the file.
TEST(ResourceConfigTest, AClassIsKnownByWhatItRegisters) {
  AgentClassSyntax echo;
  echo.agent_class = AgentClass::kSystemd;
  echo.name = "echo";
  echo.agent = "echo:";
  echo.agent_form = "echo:WORD";
  echo.keywords = {{"resources[]", "repeat", "integer", "1", "times to say it"}};
  echo.monitor.interval_ms = 4242;
  std::vector<std::string> parsed_agents;
  echo.parse = [&](const YamlSection& s, const std::string& agent, ResourceSpec& r) -> Status {
    parsed_agents.push_back(agent);
    r.agent.unit = agent.substr(5);
    int repeat = 1;
    if (auto st = s.get_int("repeat", repeat, 1, 3); !st) return st;
    return Ok{};
  };
  echo.check_in_file = [](const YamlSection& s, const ResourceSpec& r,
                          const ResourceConfig& c) -> Status {
    if (c.find("quiet")) return s.error(s["agent"], r.name + " cannot be heard");
    return Ok{};
  };
  // A check of another program's parser: where a file is applied only.
  echo.check_at_apply = [](const YamlSection& s, const ResourceSpec& r) -> Status {
    if (r.agent.unit == "stale") return s.error(s["agent"], "stale is refused now");
    return Ok{};
  };
  AgentClassSyntax plain = agent_class_syntaxes().front();  // exec
  const AgentClassSyntaxes classes = {plain, echo};

  auto c = parse_resource_config("resources:\n  - {name: a, agent: 'echo:hi', repeat: 2}\n", kPath,
                                 classes);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(parsed_agents, std::vector<std::string>{"echo:hi"});
  EXPECT_EQ(c->resources[0].agent.unit, "hi");
  EXPECT_EQ(c->resources[0].monitor.interval_ms, 4242);
  EXPECT_EQ(c->resources[0].monitor.timeout_ms, 20000);
  const std::string stale = "resources:\n  - {name: a, agent: 'echo:stale'}\n";
  EXPECT_FALSE(parse_resource_config(stale, kPath, classes).ok());
  EXPECT_TRUE(parse_resource_config(stale, kPath, classes, ResourceFileUse::kApplied).ok());

  const BadCase cases[] = {
      {"resources:\n  - {name: a, agent: vip}\n",
       "resources.yaml:2:22: unknown agent class 'vip' (expected exec or echo:WORD)"},
      {"resources:\n  - {name: a, agent: exec, command: [/bin/a], repeat: 2}\n",
       "resources.yaml:2:55: repeat is only for agent echo:WORD"},
      {"resources:\n  - {name: a, agent: 'echo:x', repeat: 9}\n", "repeat must be between 1 and 3"},
      {"resources:\n  - {name: a, agent: 'echo:x', promotable: {}}\n",
       "promotable needs an agent with a promoted role, and no agent class has one"},
      {"resources:\n  - {name: a, agent: 'echo:x'}\n  - {name: quiet, agent: exec, command: "
       "[/b]}\n",
       "resources.yaml:2:22: a cannot be heard"},
  };
  for (const auto& bad : cases) {
    auto parsed = parse_resource_config(bad.text, kPath, classes);
    ASSERT_FALSE(parsed.ok()) << "accepted:\n" << bad.text;
    EXPECT_NE(parsed.error().message.find(bad.message), std::string::npos)
        << "message: " << parsed.error().message << "\nexpected: " << bad.message;
  }
}

TEST(ResourceConfigDocsTest, ReferenceListsEveryKeyword) {
  expect_documented(resource_config_keywords(agent_class_syntaxes()),
                    "# Configuration reference: resources");
}

}  // namespace
}  // namespace bulwark
