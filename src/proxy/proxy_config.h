// bulwark-proxy's configuration: frontends (where clients connect), backends
// (where their traffic goes) and the global settings. Parsing reports the
// first error as "file:line:column: message" and never yields a half-valid
// ProxyConfig, so a bad reload leaves the running configuration untouched.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "core/yaml_section.h"
#include "sys/socket_address.h"

namespace bulwark::proxy {

enum class Mode { kHttp, kTcp };
enum class Balance { kRoundRobin, kLeastConn, kSource, kFirst };
enum class CheckType { kNone, kTcp, kHttp, kCommand };

const char* mode_name(Mode mode);
const char* balance_name(Balance balance);
const char* check_type_name(CheckType type);

struct CheckConfig {
  CheckType type = CheckType::kNone;
  std::string path = "/";            // http: request target
  std::string host;                  // http: Host header; default the server's address
  int expect_status = 0;             // http: 0 accepts any 2xx or 3xx
  std::vector<std::string> command;  // command: argv, exit 0 means healthy
  int interval_ms = 2000;
  int timeout_ms = 1000;
  int rise = 2;
  int fall = 3;
};

struct ServerConfig {
  std::string name;
  SocketAddress address;
  int weight = 1;  // 0: no new traffic, like drain
  bool backup = false;
  int maxconn = 0;  // 0: no limit
};

struct BackendConfig {
  std::string name;
  Balance balance = Balance::kRoundRobin;
  int retries = 3;
  int connect_timeout_ms = 5000;
  int server_timeout_ms = 30000;
  int queue_max = 1024;
  int queue_timeout_ms = 5000;
  int error_limit = 3;  // consecutive traffic errors that mark a server down; 0: off
  int pool_idle_max = 256;
  int pool_idle_timeout_ms = 10000;
  CheckConfig check;
  std::vector<ServerConfig> servers;
  // Run by the cluster (the `proxy` resource): the servers are the nodes
  // where this resource runs, at NODE_ADDRESS:servers_from_port, kept up to
  // date by reloads. Empty: `servers` as written.
  std::string servers_from;
  int servers_from_port = 0;

  const ServerConfig* find_server(const std::string& server) const;
};

struct FrontendConfig {
  std::string name;
  SocketAddress listen;
  Mode mode = Mode::kHttp;
  std::string backend;
  int maxconn = 10000;
  int backlog = 4096;
  int client_timeout_ms = 30000;
  int http_request_timeout_ms = 10000;
  int keepalive_timeout_ms = 10000;
  int max_header_bytes = 16384;
  bool forwarded_for = true;
  bool forwarded = false;
  bool freebind = false;
};

struct GlobalConfig {
  int workers = 0;  // 0: one per core
  int maxconn = 100000;
  std::string stats_listen;    // empty: no stats endpoint
  std::string control_socket;  // empty: no control socket
  int grace_ms = 10000;
};

struct ProxyConfig {
  std::string path;
  GlobalConfig global;
  std::vector<FrontendConfig> frontends;
  std::vector<BackendConfig> backends;

  const BackendConfig* find_backend(const std::string& name) const;
};

Result<ProxyConfig> parse_proxy_config(const std::string& text, const std::string& path);
Result<ProxyConfig> load_proxy_config(const std::string& path);
// A configuration that is part of a larger YAML file (a `proxy` resource's
// `proxy:` section): positions in errors are the larger file's.
Result<ProxyConfig> parse_proxy_config_node(const YAML::Node& root, const std::string& path);
// A `proxy` resource's section (src/classes/proxy/proxy_syntax.cc):
// a valid configuration that leaves control_socket to the cluster.
Status check_cluster_proxy_section(const YAML::Node& section, const std::string& path);

// Names of frontends, backends and servers: 1-63 of a-z A-Z 0-9 - _ .
bool valid_proxy_name(const std::string& name);
// Validates one server as the control socket receives it, with the same
// rules as the file.
Status validate_server(const BackendConfig& backend, const ServerConfig& server);

// Every keyword, for docs/configuration.md and the test that keeps it complete.
const std::vector<ConfigKeyword>& proxy_config_keywords();

}  // namespace bulwark::proxy
