// Tests of what the cluster writes for a `proxy` resource: the servers of a
// servers_from backend from every node's status, the weight of a server
// that is leaving and the drain it asks for, the frontends of loopback VIPs
// (only on their holder) and of other VIPs (freebind), the control socket.
// The file is read back with bulwark-proxy's own parser.
#include "classes/proxy/proxy_controller.h"

#include <gtest/gtest.h>

#include "classes/registry/agent_classes.h"
#include "proxy/proxy_config.h"

namespace bulwark {
namespace {

constexpr const char* kResources =
    "resources:\n"
    "  - {name: web, agent: exec, command: [/bin/web], clone: {}}\n"
    "  - {name: dev, agent: vip, params: {address: 127.0.9.100}}\n"
    "  - {name: real, agent: vip, params: {address: 192.0.2.100, interface: eth0}}\n"
    "  - name: lb\n"
    "    agent: proxy\n"
    "    clone: {}\n"
    "    proxy:\n"
    "      global: {workers: 1}\n"
    "      frontends:\n"
    "        - {name: local, listen: '127.0.9.100:8080', backend: web}\n"
    "        - {name: public, listen: '192.0.2.100:80', backend: web}\n"
    "        - {name: fixed, listen: '127.0.0.1:9000', backend: static}\n"
    "      backends:\n"
    "        - {name: web, servers_from: {resource: web, port: 8000}, balance: leastconn}\n"
    "        - name: static\n"
    "          servers: [{name: s, address: '127.0.0.1:9001'}]\n";

ResourceConfig config() {
  auto c = parse_resource_config(kResources, "r.yaml", agent_class_syntaxes());
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : ResourceConfig{};
}

ClusterState cluster() {
  ClusterState s;
  for (const auto& [name, address] : std::map<std::string, std::string>{
           {"n1", "127.0.9.1"}, {"n2", "127.0.9.2"}, {"n3", "127.0.9.3"}, {"n4", "127.0.9.4"}}) {
    s.nodes[name].name = name;
    s.nodes[name].address = address;
  }
  return s;
}

InstanceStatus in(InstanceState state) {
  InstanceStatus st;
  st.state = state;
  return st;
}

proxy::ProxyConfig read_back(const std::string& text) {
  auto c = proxy::parse_proxy_config(text, "lb.proxy.yaml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message) << "\n" << text;
  return c.ok() ? *c : proxy::ProxyConfig{};
}

TEST(ProxyControllerTest, ServersFollowWhereTheResourceRuns) {
  const ResourceConfig c = config();
  ClusterState s = cluster();
  s.statuses["n2"].resources["web"] = in(InstanceState::kStarted);
  s.statuses["n3"].resources["web"] = in(InstanceState::kStopping);
  s.statuses["n4"].resources["web"] = in(InstanceState::kFailed);
  NodeStatusRecord local;  // n1, fresher than its record in the store
  local.resources["web"] = in(InstanceState::kStarted);
  s.statuses["n1"].resources["web"] = in(InstanceState::kStopped);
  const ResourceSpec& lb = *c.find("lb");
  const ProxyInputs inputs = proxy_inputs(lb, c, s, "n1", local);
  EXPECT_EQ(inputs.servers.at("web"),
            (std::vector<DerivedServer>{{"n1", "127.0.9.1:8000", 1},
                                        {"n2", "127.0.9.2:8000", 1},
                                        {"n3", "127.0.9.3:8000", 0}}));  // stopping: no new traffic
  EXPECT_TRUE(inputs.drains.empty());
  auto text = render_cluster_proxy_config(lb, c, "/run/x", inputs);
  ASSERT_TRUE(text.ok()) << text.error().message;
  const proxy::ProxyConfig p = read_back(*text);
  EXPECT_EQ(p.global.control_socket, "/run/x/lb.proxy.sock");
  EXPECT_EQ(p.global.workers, 1);
  const proxy::BackendConfig* web = p.find_backend("web");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->balance, proxy::Balance::kLeastConn);  // the rest of the section stays
  ASSERT_EQ(web->servers.size(), 3U);
  EXPECT_EQ(web->servers[2].name, "n3");
  EXPECT_EQ(web->servers[2].weight, 0);
  EXPECT_TRUE(web->servers_from.empty());
  EXPECT_EQ(p.find_backend("static")->servers.size(), 1U);
}

TEST(ProxyControllerTest, AnAnnouncedStopIsDrainedFirst) {
  const ResourceConfig c = config();
  ClusterState s = cluster();
  InstanceStatus leaving = in(InstanceState::kStarted);
  leaving.notify.pending = "stop";
  leaving.notify.pending_seq = 42;
  s.statuses["n2"].resources["web"] = leaving;
  const ProxyInputs inputs = proxy_inputs(*c.find("lb"), c, s, "n1", NodeStatusRecord{});
  EXPECT_EQ(inputs.servers.at("web"), (std::vector<DerivedServer>{{"n2", "127.0.9.2:8000", 0}}));
  EXPECT_EQ(inputs.drains, (std::set<ServerDrain>{{"web", "n2", 42}}));
}

TEST(ProxyControllerTest, LoopbackVipFrontendsOnlyOnTheHolderAndFreebindOnOthers) {
  const ResourceConfig c = config();
  ClusterState s = cluster();
  const ResourceSpec& lb = *c.find("lb");
  NodeStatusRecord local;
  const auto frontends = [&]() {
    auto text = render_cluster_proxy_config(lb, c, "/run/x", proxy_inputs(lb, c, s, "n1", local));
    EXPECT_TRUE(text.ok());
    std::map<std::string, bool> out;  // name -> freebind
    for (const auto& f : read_back(*text).frontends) out[f.name] = f.freebind;
    return out;
  };
  EXPECT_EQ(frontends(), (std::map<std::string, bool>{{"fixed", false}, {"public", true}}));
  local.resources["dev"] = in(InstanceState::kStarted);  // this node holds the loopback VIP
  EXPECT_EQ(frontends(),
            (std::map<std::string, bool>{{"fixed", false}, {"local", false}, {"public", true}}));
  local.resources["dev"] = in(InstanceState::kStopping);
  EXPECT_EQ(frontends().count("local"), 0U);
}

TEST(ProxyControllerTest, ABadProxySectionIsRefusedWhereItStands) {
  const auto error = [](const std::string& proxy) {
    const std::string text =
        "resources:\n"
        "  - {name: web, agent: exec, command: [/bin/web], clone: {}}\n"
        "  - name: lb\n"
        "    agent: proxy\n"
        "    proxy:\n" +
        proxy;
    auto c = parse_resource_config(text, "r.yaml", agent_class_syntaxes());
    return c.ok() ? std::string("accepted") : c.error().message;
  };
  EXPECT_EQ(error("      frontends: [{name: a, listen: '127.0.0.1:1', backend: b}]\n"),
            "r.yaml:6:61: no backend named 'b'");
  EXPECT_EQ(error("      global: {control_socket: /tmp/x}\n      frontends: []\n"),
            "r.yaml:6:32: control_socket is the cluster's: each node's proxy gets its own");
  EXPECT_EQ(error("      frontends: []\n"
                  "      backends: [{name: b, servers_from: {resource: nope, port: 1}}]\n"),
            "r.yaml:7:53: no resource named 'nope'");
  EXPECT_EQ(error("      frontends: []\n"
                  "      backends: [{name: b, servers: [], servers_from: {resource: web, port: 1}}]"
                  "\n"),
            "r.yaml:7:55: servers_from replaces servers: a backend has one or the other");
}

}  // namespace
}  // namespace bulwark
