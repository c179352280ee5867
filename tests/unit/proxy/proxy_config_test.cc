// Tests of the bulwark-proxy configuration: defaults, every validation rule
// with its file:line:column, and that docs/configuration.md lists every
// keyword.
#include "proxy/proxy_config.h"

#include <gtest/gtest.h>

#include "docs_reference.h"

namespace bulwark::proxy {
namespace {

constexpr const char* kPath = "/etc/bulwark/proxy.yaml";

constexpr const char* kMinimal =
    "frontends:\n"
    "  - name: api\n"
    "    listen: 127.0.0.1:8080\n"
    "    backend: api\n"
    "backends:\n"
    "  - name: api\n"
    "    servers:\n"
    "      - {name: a, address: 127.0.0.1:9001}\n"
    "      - {name: b, address: '[::1]:9002', backup: true, weight: 3, maxconn: 10}\n";

ProxyConfig parse_ok(const std::string& text) {
  auto c = parse_proxy_config(text, kPath);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : ProxyConfig{};
}

std::string parse_error(const std::string& text) {
  auto c = parse_proxy_config(text, kPath);
  EXPECT_FALSE(c.ok()) << "expected an error for:\n" << text;
  return c.ok() ? "" : c.error().message;
}

TEST(ProxyConfigTest, MinimalHasDefaults) {
  const ProxyConfig c = parse_ok(kMinimal);
  ASSERT_EQ(c.frontends.size(), 1U);
  const FrontendConfig& f = c.frontends[0];
  EXPECT_EQ(f.mode, Mode::kHttp);
  EXPECT_EQ(f.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(f.maxconn, 10000);
  EXPECT_TRUE(f.forwarded_for);
  const BackendConfig& b = c.backends[0];
  EXPECT_EQ(b.balance, Balance::kRoundRobin);
  EXPECT_EQ(b.retries, 3);
  EXPECT_EQ(b.check.type, CheckType::kNone);
  ASSERT_EQ(b.servers.size(), 2U);
  EXPECT_EQ(b.servers[1].address.to_string(), "[::1]:9002");
  EXPECT_TRUE(b.servers[1].backup);
  EXPECT_EQ(b.servers[1].weight, 3);
  EXPECT_EQ(c.global.workers, 0);
}

TEST(ProxyConfigTest, TheIssueExampleParses) {
  const ProxyConfig c = parse_ok(
      "frontends:\n"
      "  - name: api\n"
      "    listen: 127.0.0.1:8080\n"
      "    mode: http            # http | tcp\n"
      "    backend: api\n"
      "backends:\n"
      "  - name: api\n"
      "    balance: roundrobin   # roundrobin | leastconn | source | first\n"
      "    retries: 3\n"
      "    check: {type: http, path: /healthz, interval_ms: 1000, rise: 2, fall: 2}\n"
      "    servers:\n"
      "      - {name: a, address: 127.0.0.1:9001, weight: 1}\n"
      "      - {name: b, address: 127.0.0.1:9002, backup: true}\n");
  EXPECT_EQ(c.backends[0].check.type, CheckType::kHttp);
  EXPECT_EQ(c.backends[0].check.path, "/healthz");
  EXPECT_EQ(c.backends[0].check.fall, 2);
}

struct BadCase {
  const char* text;
  const char* message;  // the whole message must contain this
};

TEST(ProxyConfigTest, RefusesWithFileLineColumn) {
  const BadCase cases[] = {
      {"frontends: [\n", "/etc/bulwark/proxy.yaml:2:1: "},
      {"- 1\n", "proxy.yaml:1:1: the configuration must be a mapping"},
      {"frontend: []\n",
       "proxy.yaml:1:1: unknown key 'frontend' (expected one of: backends, frontends, global)"},
      {"backends: []\n", "frontends must be a list"},
      {"frontends:\n  - {name: api, listen: 127.0.0.1:80, backend: nope}\n",
       "proxy.yaml:2:48: no backend named 'nope'"},
      {"frontends:\n  - {name: api, listen: 'localhost:80', backend: b}\nbackends: [{name: b}]\n",
       "proxy.yaml:2:25: 'localhost' is not an IP address (host names are not resolved)"},
      {"frontends:\n  - {name: api, listen: '127.0.0.1:99999', backend: b}\nbackends: [{name: "
       "b}]\n",
       "has no valid port"},
      {"frontends:\n  - {name: api, listen: '127.0.0.1:80', backend: b, mode: udp}\nbackends: "
       "[{name: b}]\n",
       "proxy.yaml:2:59: mode must be one of: http, tcp"},
      {"frontends:\n  - {name: api, listen: '127.0.0.1:80', backend: b, maxconn: 0}\nbackends: "
       "[{name: b}]\n",
       "maxconn must be between 1 and 10000000"},
      {"frontends:\n  - {name: 'a b', listen: '127.0.0.1:80', backend: b}\nbackends: [{name: b}]\n",
       "name 'a b' must be 1-63 characters"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\n  - {name: y, listen: "
       "'127.0.0.1:80', backend: b}\nbackends: [{name: b}]\n",
       "proxy.yaml:3:23: another frontend already listens on 127.0.0.1:80"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\n  - {name: x, listen: "
       "'127.0.0.1:81', backend: b}\nbackends: [{name: b}]\n",
       "duplicate frontend name 'x'"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends: [{name: b, "
       "balance: random}]\n",
       "balance must be one of: roundrobin, leastconn, source, first"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends: [{name: b, bogus: "
       "1}]\n",
       "proxy.yaml:3:22: unknown key 'bogus' in backends[0]"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends: [{name: b, check: "
       "{interval_ms: 5}}]\n",
       "backends[0].check.type is required"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends: [{name: b, check: "
       "{type: command}}]\n",
       "a command check needs command: a list starting with an absolute path"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends: [{name: b, check: "
       "{type: http, path: healthz}}]\n",
       "path must start with / and hold no spaces"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends: [{name: b, check: "
       "{type: tcp, rise: 0}}]\n",
       "rise must be between 1 and 100"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends:\n  - name: b\n    "
       "servers:\n      - {name: a, address: 127.0.0.1:1}\n      - {name: a, address: "
       "127.0.0.1:2}\n",
       "proxy.yaml:7:16: duplicate server name 'a'"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends:\n  - name: b\n    "
       "servers:\n      - {name: a, address: 127.0.0.1:1, weight: 300}\n",
       "weight must be between 0 and 256"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b}\nbackends:\n  - name: b\n    "
       "servers:\n      - {name: a}\n",
       "backends[0].servers[0].address is required"},
      {"global: {stats: '127.0.0.1:80'}\nfrontends:\n  - {name: x, listen: '127.0.0.1:80', "
       "backend: b}\nbackends: [{name: b}]\n",
       "a frontend already listens on the stats address"},
      {"global: {workers: -1}\nfrontends:\n  - {name: x, listen: '127.0.0.1:80', backend: "
       "b}\nbackends: [{name: b}]\n",
       "workers must be between 0 and 256"},
      {"frontends:\n  - {name: x, listen: '127.0.0.1:80', backend: b, forwarded: maybe}\nbackends: "
       "[{name: b}]\n",
       "forwarded must be true or false"},
  };
  for (const auto& c : cases) {
    const std::string message = parse_error(c.text);
    EXPECT_NE(message.find(c.message), std::string::npos)
        << "input:\n"
        << c.text << "\nmessage: " << message << "\nexpected: " << c.message;
  }
}

TEST(ProxyConfigTest, KeywordTableCoversEverySection) {
  const ProxyConfig c = parse_ok(
      "global: {workers: 2, maxconn: 1000, stats: '127.0.0.1:9000', control_socket: /tmp/c.sock,\n"
      "         grace_ms: 100}\n"
      "frontends:\n"
      "  - {name: x, listen: '127.0.0.1:80', mode: tcp, backend: b, maxconn: 5, backlog: 10,\n"
      "     client_timeout_ms: 1, http_request_timeout_ms: 2, keepalive_timeout_ms: 3,\n"
      "     max_header_bytes: 2048, forwarded_for: false, forwarded: true, freebind: true}\n"
      "backends:\n"
      "  - name: b\n"
      "    balance: first\n"
      "    retries: 1\n"
      "    connect_timeout_ms: 1\n"
      "    server_timeout_ms: 2\n"
      "    queue_max: 3\n"
      "    queue_timeout_ms: 4\n"
      "    error_limit: 5\n"
      "    pool_idle_max: 6\n"
      "    pool_idle_timeout_ms: 7\n"
      "    check: {type: http, path: /h, host: h, expect_status: 204, interval_ms: 100,\n"
      "            timeout_ms: 50, rise: 1, fall: 1}\n"
      "    servers: [{name: a, address: '127.0.0.1:1', weight: 2, backup: false, maxconn: 3}]\n");
  EXPECT_EQ(c.global.workers, 2);
  EXPECT_EQ(c.frontends[0].max_header_bytes, 2048);
  EXPECT_TRUE(c.frontends[0].freebind);
  EXPECT_EQ(c.backends[0].pool_idle_timeout_ms, 7);
  EXPECT_EQ(c.backends[0].check.expect_status, 204);
  EXPECT_EQ(c.backends[0].servers[0].maxconn, 3);
  // The command check's own key.
  parse_ok(
      "frontends: [{name: x, listen: '127.0.0.1:80', backend: b}]\n"
      "backends: [{name: b, check: {type: command, command: [/bin/true]}}]\n");
}

TEST(ProxyConfigDocsTest, ReferenceListsEveryKeyword) {
  expect_documented(proxy_config_keywords(), "# Configuration reference: `bulwark-proxy`");
}

}  // namespace
}  // namespace bulwark::proxy
