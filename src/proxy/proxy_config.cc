#include "proxy/proxy_config.h"

#include <algorithm>
#include <set>

namespace bulwark::proxy {
namespace {

// The keyword table: one row per key, beside the code that parses it. The
// configuration reference (docs/configuration.md) must list every row.
const std::vector<ConfigKeyword> kKeywords = {
    {"global", "workers", "integer", "0", "worker threads, each with its own event loop; 0: cores"},
    {"global", "maxconn", "integer", "100000", "client connections over all frontends"},
    {"global", "stats", "ADDRESS:PORT", "(off)",
     "HTTP endpoint serving /stats (JSON) and /metrics (Prometheus)"},
    {"global", "control_socket", "path", "(off)",
     "Unix socket for live changes (bulwark-proxy ctl)"},
    {"global", "grace_ms", "integer, ms", "10000",
     "on SIGTERM, how long established connections may finish"},
    {"frontends[]", "name", "string", "(required)", "frontend name"},
    {"frontends[]", "listen", "ADDRESS:PORT", "(required)", "where clients connect"},
    {"frontends[]", "mode", "http|tcp", "http", "HTTP/1.1 (L7) or plain TCP (L4, splice)"},
    {"frontends[]", "backend", "string", "(required)", "the backend that serves this frontend"},
    {"frontends[]", "maxconn", "integer", "10000",
     "connections at once; more wait in the listen backlog"},
    {"frontends[]", "backlog", "integer", "4096", "listen(2) backlog"},
    {"frontends[]", "client_timeout_ms", "integer, ms", "30000",
     "client inactivity while a request or response is in progress"},
    {"frontends[]", "http_request_timeout_ms", "integer, ms", "10000",
     "http: time to receive a whole request head (408 after)"},
    {"frontends[]", "keepalive_timeout_ms", "integer, ms", "10000",
     "http: idle time allowed between two requests"},
    {"frontends[]", "max_header_bytes", "integer", "16384",
     "http: largest request head (431 beyond)"},
    {"frontends[]", "forwarded_for", "bool", "true", "http: append the client to X-Forwarded-For"},
    {"frontends[]", "forwarded", "bool", "false",
     "http: append the client to Forwarded (RFC 7239)"},
    {"frontends[]", "freebind", "bool", "false",
     "listen on an address this host does not hold yet (IP_FREEBIND)"},
    {"backends[]", "name", "string", "(required)", "backend name"},
    {"backends[]", "balance", "roundrobin|leastconn|source|first", "roundrobin",
     "how a server is chosen"},
    {"backends[]", "retries", "integer", "3", "further servers tried after a failed connect"},
    {"backends[]", "connect_timeout_ms", "integer, ms", "5000", "TCP connect to a server"},
    {"backends[]", "server_timeout_ms", "integer, ms", "30000",
     "server inactivity while a response is awaited (504 after)"},
    {"backends[]", "queue_max", "integer", "1024",
     "requests waiting for a server slot (503 beyond)"},
    {"backends[]", "queue_timeout_ms", "integer, ms", "5000", "longest wait in the queue (503)"},
    {"backends[]", "error_limit", "integer", "3",
     "consecutive traffic errors that trigger a check (or, unchecked, mark it down); 0: off"},
    {"backends[]", "pool_idle_max", "integer", "256",
     "http: idle server connections kept per server and worker"},
    {"backends[]", "pool_idle_timeout_ms", "integer, ms", "10000",
     "http: idle server connections are closed after this"},
    {"backends[]", "check", "mapping", "(none)", "active health check"},
    {"backends[]", "servers", "list", "[]", "the servers"},
    {"backends[]", "servers_from", "mapping", "(none)",
     "instead of servers: run by the cluster, one server per node where a resource runs"},
    {"backends[].servers_from", "resource", "string", "(required)",
     "the resource (usually a clone) whose instances are the servers"},
    {"backends[].servers_from", "port", "port", "(required)", "each server is NODE_ADDRESS:PORT"},
    {"backends[].check", "type", "tcp|http|command", "(required)", "kind of check"},
    {"backends[].check", "path", "string", "/", "http: request target"},
    {"backends[].check", "host", "string", "(server address)", "http: Host header"},
    {"backends[].check", "expect_status", "integer", "(any 2xx or 3xx)", "http: status required"},
    {"backends[].check", "command", "list of strings", "(required for command)",
     "argv run with BULWARK_SERVER_* in its environment; exit 0: healthy"},
    {"backends[].check", "interval_ms", "integer, ms", "2000", "time between checks"},
    {"backends[].check", "timeout_ms", "integer, ms", "1000", "a check slower than this fails"},
    {"backends[].check", "rise", "integer", "2", "good checks in a row to mark a server up"},
    {"backends[].check", "fall", "integer", "3", "bad checks in a row to mark a server down"},
    {"backends[].servers[]", "name", "string", "(required)", "server name, unique in its backend"},
    {"backends[].servers[]", "address", "ADDRESS:PORT", "(required)", "IP literal and port"},
    {"backends[].servers[]", "weight", "integer", "1", "share of traffic (0-256)"},
    {"backends[].servers[]", "backup", "bool", "false", "only used when no other server is up"},
    {"backends[].servers[]", "maxconn", "integer", "0",
     "requests or connections at once; 0: no limit; more wait in the queue"},
};

YamlSection section(const std::string& path, const YAML::Node& node, const std::string& label,
                    const char* table_section) {
  return YamlSection(path, node, label, kKeywords, table_section);
}

Status get_address(const YamlSection& s, const char* key, SocketAddress& out) {
  std::string text;
  if (auto st = s.get_string(key, text); !st) return st;
  auto parsed = parse_socket_address(text);
  if (!parsed) return s.error(s[key], parsed.error().message);
  out = *parsed;
  return Ok{};
}

Status get_name(const YamlSection& s, std::string& out) {
  if (auto st = s.require("name"); !st) return st;
  if (auto st = s.get_string("name", out); !st) return st;
  if (!valid_proxy_name(out))
    return s.error(s["name"], "name '" + out + "' must be 1-63 characters of a-z A-Z 0-9 - _ .");
  return Ok{};
}

Status parse_global(const std::string& path, const YAML::Node& node, GlobalConfig& g) {
  const YamlSection s = section(path, node, "global", "global");
  if (auto st = s.check_keys(); !st) return st;
  if (auto st = s.get_int("workers", g.workers, 0, 256); !st) return st;
  if (auto st = s.get_int("maxconn", g.maxconn, 1, 10000000); !st) return st;
  if (auto st = s.get_int("grace_ms", g.grace_ms, 0, 3600000); !st) return st;
  if (auto st = s.get_string("stats", g.stats_listen); !st) return st;
  if (!g.stats_listen.empty()) {
    SocketAddress unused;
    if (auto st = get_address(s, "stats", unused); !st) return st;
  }
  if (auto st = s.get_string("control_socket", g.control_socket); !st) return st;
  if (g.control_socket.size() >= 100)
    return s.error(s["control_socket"], "control_socket path must be shorter than 100 bytes");
  return Ok{};
}

Status parse_check(const std::string& path, const YAML::Node& node, const std::string& label,
                   CheckConfig& c) {
  const YamlSection s = section(path, node, label, "backends[].check");
  if (auto st = s.check_keys(); !st) return st;
  if (auto st = s.require("type"); !st) return st;
  std::string type = "tcp";
  if (auto st = s.get_choice("type", type, {"tcp", "http", "command"}); !st) return st;
  c.type = type == "tcp"    ? CheckType::kTcp
           : type == "http" ? CheckType::kHttp
                            : CheckType::kCommand;
  if (auto st = s.get_string("path", c.path); !st) return st;
  if (c.path.empty() || c.path[0] != '/' ||
      !std::all_of(c.path.begin(), c.path.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; }))
    return s.error(s.at_or_self("path"), "path must start with / and hold no spaces");
  if (auto st = s.get_string("host", c.host); !st) return st;
  if (!std::all_of(c.host.begin(), c.host.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; }))
    return s.error(s["host"], "host must hold no spaces or control characters");
  if (auto st = s.get_int("expect_status", c.expect_status, 100, 599); !st) return st;
  if (auto st = s.get_string_list("command", c.command); !st) return st;
  if (c.type == CheckType::kCommand &&
      (c.command.empty() || c.command[0].empty() || c.command[0][0] != '/'))
    return s.error(s.at_or_self("command"),
                   "a command check needs command: a list starting with an absolute path");
  if (c.type != CheckType::kCommand && !c.command.empty())
    return s.error(s["command"], "command is only for type: command");
  if (auto st = s.get_int("interval_ms", c.interval_ms, 10, 3600000); !st) return st;
  c.timeout_ms = std::min(c.timeout_ms, c.interval_ms);
  if (auto st = s.get_int("timeout_ms", c.timeout_ms, 1, 3600000); !st) return st;
  if (auto st = s.get_int("rise", c.rise, 1, 100); !st) return st;
  if (auto st = s.get_int("fall", c.fall, 1, 100); !st) return st;
  return Ok{};
}

Status parse_server(const std::string& path, const YAML::Node& node, const std::string& label,
                    ServerConfig& server) {
  const YamlSection s = section(path, node, label, "backends[].servers[]");
  if (auto st = s.check_keys(); !st) return st;
  if (auto st = get_name(s, server.name); !st) return st;
  if (auto st = s.require("address"); !st) return st;
  if (auto st = get_address(s, "address", server.address); !st) return st;
  if (auto st = s.get_int("weight", server.weight, 0, 256); !st) return st;
  if (auto st = s.get_bool("backup", server.backup); !st) return st;
  if (auto st = s.get_int("maxconn", server.maxconn, 0, 10000000); !st) return st;
  return Ok{};
}

Status parse_backend(const std::string& path, const YAML::Node& node, const std::string& label,
                     BackendConfig& b) {
  const YamlSection s = section(path, node, label, "backends[]");
  if (auto st = s.check_keys(); !st) return st;
  if (auto st = get_name(s, b.name); !st) return st;
  std::string balance = "roundrobin";
  if (auto st = s.get_choice("balance", balance, {"roundrobin", "leastconn", "source", "first"});
      !st)
    return st;
  b.balance = balance == "roundrobin"  ? Balance::kRoundRobin
              : balance == "leastconn" ? Balance::kLeastConn
              : balance == "source"    ? Balance::kSource
                                       : Balance::kFirst;
  for (auto [key, field, min, max] :
       {std::tuple{"retries", &b.retries, 0, 100},
        std::tuple{"connect_timeout_ms", &b.connect_timeout_ms, 1, 3600000},
        std::tuple{"server_timeout_ms", &b.server_timeout_ms, 1, 86400000},
        std::tuple{"queue_max", &b.queue_max, 0, 10000000},
        std::tuple{"queue_timeout_ms", &b.queue_timeout_ms, 1, 3600000},
        std::tuple{"error_limit", &b.error_limit, 0, 1000},
        std::tuple{"pool_idle_max", &b.pool_idle_max, 0, 100000},
        std::tuple{"pool_idle_timeout_ms", &b.pool_idle_timeout_ms, 1, 3600000}}) {
    if (auto st = s.get_int(key, *field, min, max); !st) return st;
  }
  if (const YAML::Node check = s["check"]) {
    if (auto st = parse_check(path, check, label + ".check", b.check); !st) return st;
  }
  if (const YAML::Node from = s["servers_from"]) {
    if (s["servers"])
      return s.error(from, "servers_from replaces servers: a backend has one or the other");
    const YamlSection f = section(path, from, label + ".servers_from", "backends[].servers_from");
    if (auto st = f.check_keys(); !st) return st;
    if (auto st = f.require("resource"); !st) return st;
    if (auto st = f.get_string("resource", b.servers_from); !st) return st;
    if (auto st = f.require("port"); !st) return st;
    if (auto st = f.get_int("port", b.servers_from_port, 1, 65535); !st) return st;
  }
  if (const YAML::Node servers = s["servers"]) {
    if (!servers.IsSequence()) return s.error(servers, "servers must be a list");
    for (std::size_t i = 0; i < servers.size(); ++i) {
      ServerConfig server;
      const std::string server_label = label + ".servers[" + std::to_string(i) + "]";
      if (auto st = parse_server(path, servers[i], server_label, server); !st) return st;
      if (b.find_server(server.name))
        return s.error(servers[i]["name"], "duplicate server name '" + server.name + "'");
      b.servers.push_back(std::move(server));
    }
  }
  return Ok{};
}

Status parse_frontend(const std::string& path, const YAML::Node& node, const std::string& label,
                      FrontendConfig& f) {
  const YamlSection s = section(path, node, label, "frontends[]");
  if (auto st = s.check_keys(); !st) return st;
  if (auto st = get_name(s, f.name); !st) return st;
  if (auto st = s.require("listen"); !st) return st;
  if (auto st = get_address(s, "listen", f.listen); !st) return st;
  std::string mode = "http";
  if (auto st = s.get_choice("mode", mode, {"http", "tcp"}); !st) return st;
  f.mode = mode == "http" ? Mode::kHttp : Mode::kTcp;
  if (auto st = s.require("backend"); !st) return st;
  if (auto st = s.get_string("backend", f.backend); !st) return st;
  for (auto [key, field, min, max] :
       {std::tuple{"maxconn", &f.maxconn, 1, 10000000}, std::tuple{"backlog", &f.backlog, 1, 65535},
        std::tuple{"client_timeout_ms", &f.client_timeout_ms, 1, 86400000},
        std::tuple{"http_request_timeout_ms", &f.http_request_timeout_ms, 1, 3600000},
        std::tuple{"keepalive_timeout_ms", &f.keepalive_timeout_ms, 1, 86400000},
        std::tuple{"max_header_bytes", &f.max_header_bytes, 1024, 1048576}}) {
    if (auto st = s.get_int(key, *field, min, max); !st) return st;
  }
  for (auto [key, field] :
       {std::pair{"forwarded_for", &f.forwarded_for}, std::pair{"forwarded", &f.forwarded},
        std::pair{"freebind", &f.freebind}}) {
    if (auto st = s.get_bool(key, *field); !st) return st;
  }
  return Ok{};
}

Result<ProxyConfig> parse_root(const YAML::Node& root, const std::string& path) {
  if (!root.IsMap()) return yaml_error(path, root, "the configuration must be a mapping");
  ProxyConfig c;
  c.path = path;
  for (const auto& item : root) {
    auto key = yaml_key(path, item.first);
    if (!key) return key.error();
    if (*key != "global" && *key != "frontends" && *key != "backends")
      return yaml_error(
          path, item.first,
          "unknown key '" + *key + "' (expected one of: backends, frontends, global)");
  }
  if (const YAML::Node global = root["global"]) {
    if (auto st = parse_global(path, global, c.global); !st) return st.error();
  }
  const YAML::Node backends = root["backends"];
  if (backends && !backends.IsSequence())
    return yaml_error(path, backends, "backends must be a list");
  std::set<std::string> names;
  for (std::size_t i = 0; backends && i < backends.size(); ++i) {
    BackendConfig b;
    if (auto st = parse_backend(path, backends[i], "backends[" + std::to_string(i) + "]", b); !st)
      return st.error();
    if (!names.insert(b.name).second)
      return yaml_error(path, backends[i]["name"], "duplicate backend name '" + b.name + "'");
    c.backends.push_back(std::move(b));
  }
  const YAML::Node frontends = root["frontends"];
  // An empty list is allowed: a proxy that listens nowhere yet (the
  // cluster's, on a node without the VIP its frontends bind) waits for a
  // reload that adds one.
  if (!frontends || !frontends.IsSequence())
    return yaml_error(path, frontends ? frontends : root, "frontends must be a list");
  names.clear();
  std::set<std::string> listens;
  for (std::size_t i = 0; i < frontends.size(); ++i) {
    FrontendConfig f;
    if (auto st = parse_frontend(path, frontends[i], "frontends[" + std::to_string(i) + "]", f);
        !st)
      return st.error();
    if (!names.insert(f.name).second)
      return yaml_error(path, frontends[i]["name"], "duplicate frontend name '" + f.name + "'");
    if (!listens.insert(f.listen.to_string()).second)
      return yaml_error(path, frontends[i]["listen"],
                        "another frontend already listens on " + f.listen.to_string());
    if (!c.find_backend(f.backend))
      return yaml_error(path, frontends[i]["backend"], "no backend named '" + f.backend + "'");
    c.frontends.push_back(std::move(f));
  }
  if (!c.global.stats_listen.empty() &&
      listens.count(parse_socket_address(c.global.stats_listen)->to_string()))
    return yaml_error(path, root["global"]["stats"],
                      "a frontend already listens on the stats address");
  return c;
}

}  // namespace

const char* mode_name(Mode mode) { return mode == Mode::kHttp ? "http" : "tcp"; }

const char* balance_name(Balance balance) {
  switch (balance) {
    case Balance::kRoundRobin:
      return "roundrobin";
    case Balance::kLeastConn:
      return "leastconn";
    case Balance::kSource:
      return "source";
    case Balance::kFirst:
      return "first";
  }
  return "?";
}

const char* check_type_name(CheckType type) {
  switch (type) {
    case CheckType::kNone:
      return "none";
    case CheckType::kTcp:
      return "tcp";
    case CheckType::kHttp:
      return "http";
    case CheckType::kCommand:
      return "command";
  }
  return "?";
}

const ServerConfig* BackendConfig::find_server(const std::string& server) const {
  for (const auto& s : servers) {
    if (s.name == server) return &s;
  }
  return nullptr;
}

const BackendConfig* ProxyConfig::find_backend(const std::string& name) const {
  for (const auto& b : backends) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

bool valid_proxy_name(const std::string& name) {
  return !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
  });
}

Status validate_server(const BackendConfig& backend, const ServerConfig& server) {
  if (!valid_proxy_name(server.name))
    return make_error(Errc::kInvalid, "server name '" + server.name +
                                          "' must be 1-63 characters of a-z A-Z 0-9 - _ .");
  if (backend.find_server(server.name))
    return make_error(Errc::kConflict,
                      "backend '" + backend.name + "' already has a server '" + server.name + "'");
  if (server.weight < 0 || server.weight > 256)
    return make_error(Errc::kInvalid, "weight must be between 0 and 256");
  if (server.maxconn < 0) return make_error(Errc::kInvalid, "maxconn must not be negative");
  return Ok{};
}

Result<ProxyConfig> parse_proxy_config(const std::string& text, const std::string& path) {
  return parse_yaml<ProxyConfig>(text, path,
                                 [&](const YAML::Node& root) { return parse_root(root, path); });
}

Result<ProxyConfig> parse_proxy_config_node(const YAML::Node& root, const std::string& path) {
  try {
    return parse_root(root, path);
  } catch (const YAML::Exception& e) {
    return yaml_exception_error(path, e);
  }
}

Status check_cluster_proxy_section(const YAML::Node& section, const std::string& path) {
  auto c = parse_proxy_config_node(section, path);
  if (!c) return c.error();
  if (section["global"] && section["global"]["control_socket"])
    return yaml_error(path, section["global"]["control_socket"],
                      "control_socket is the cluster's: each node's proxy gets its own");
  return Ok{};
}

Result<ProxyConfig> load_proxy_config(const std::string& path) {
  auto text = read_config_file(path);
  if (!text) return text.error();
  return parse_proxy_config(*text, path);
}

const std::vector<ConfigKeyword>& proxy_config_keywords() { return kKeywords; }

}  // namespace bulwark::proxy
