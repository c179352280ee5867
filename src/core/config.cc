#include "core/config.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/yaml_section.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;

// The keyword table: one row per key, beside the code that parses it. The
// configuration reference in docs/ must list every row (a test checks).
const std::vector<ConfigKeyword> kKeywords = {
    {"cluster", "name", "string", "(required)", "cluster name: 1-32 of a-z 0-9 -"},
    {"cluster", "secret_file", "path", "secret",
     "file with the cluster secret (heartbeat HMAC key)"},
    {"cluster", "token_file", "path", "admin.token", "file with the admin token for API writes"},
    {"cluster", "tls_dir", "path", "tls", "directory with ca.crt and NODE.crt / NODE.key"},
    {"cluster", "heartbeat_ms", "integer, ms", "50", "interval between peer heartbeats"},
    {"cluster", "lease_ms", "integer, ms", "300", "quorum lease length"},
    {"store", "mode", "embedded|external", "embedded", "run an etcd member per node or use one"},
    {"store", "data_dir", "path", "data",
     "embedded: each node keeps its etcd data in DATA_DIR/NODE"},
    {"store", "etcd_binary", "path", "/usr/bin/etcd", "embedded: the etcd server to run"},
    {"store", "etcd_heartbeat_ms", "integer, ms", "50", "embedded: etcd --heartbeat-interval"},
    {"store", "etcd_election_ms", "integer, ms", "300", "embedded: etcd --election-timeout"},
    {"store", "request_timeout_ms", "integer, ms", "2000", "deadline of every etcd request"},
    {"store", "prefix", "string", "/bulwark/CLUSTER", "key prefix of the cluster state"},
    {"store", "endpoints", "list of URLs", "[]", "external: etcd client URLs"},
    {"store", "ca_file", "path", "TLS_DIR/ca.crt", "external: CA of the etcd cluster"},
    {"store", "cert_file", "path", "TLS_DIR/NODE.crt", "external: client certificate"},
    {"store", "key_file", "path", "TLS_DIR/NODE.key", "external: client key"},
    {"ports", "api", "port", "7400", "HTTPS API"},
    {"ports", "heartbeat", "port", "7401", "UDP heartbeats"},
    {"ports", "etcd_client", "port", "2379", "embedded: etcd client URL port"},
    {"ports", "etcd_peer", "port", "2380", "embedded: etcd peer URL port"},
    {"nodes[]", "name", "string", "(required)", "node name: 1-63 of a-z 0-9 - _ ."},
    {"nodes[]", "address", "IP address", "(required)", "IPv4 or IPv6 literal of the node"},
    {"nodes[]", "attributes", "map", "{}", "free-form key=value attributes such as zone"},
    {"nodes[]", "ports", "map", "(the ports section)", "per-node port overrides"},
    {"nodes[]", "fence", "map", "{}",
     "this node's fence agent options, e.g. {plug: vm-n1} or {ip: 192.0.2.10}"},
    {"fencing", "command", "list of strings", "(none: no fencing)",
     "a fence agent (fence-agents interface: options as key=value on stdin)"},
    {"fencing", "params", "map", "{}", "options sent to every call (login, password...)"},
    {"fencing", "action", "off|reboot", "off", "what fencing asks the agent to do"},
    {"fencing", "timeout_ms", "integer, ms", "60000", "a fence call slower than this failed"},
    {"watchdog", "device", "path", "(none: no watchdog)", "e.g. /dev/watchdog (softdog)"},
    {"watchdog", "timeout_ms", "integer, ms", "10000",
     "the machine is reset this long after the last keepalive"},
    {"agents", "ocf_root", "path", "/usr/lib/ocf",
     "OCF_ROOT: agents in OCF_ROOT/resource.d/PROVIDER/TYPE"},
};

Error config_error(const std::string& path, const YAML::Node& node, const std::string& what) {
  return yaml_error(path, node, what);
}

// A mapping of bulwark.yaml: "nodes[2]" takes the keys of nodes[]; its port
// overrides, "nodes[2].ports", take those of the ports section.
YamlSection section_of(const std::string& path, const YAML::Node& node, const std::string& name) {
  std::string section = name;
  if (name.rfind("nodes[", 0) == 0) section = name.ends_with(".ports") ? "ports" : "nodes[]";
  return YamlSection(path, node, name, kKeywords, section);
}

std::string absolute_from(const std::string& base_dir, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_absolute()) return path.lexically_normal().string();
  return (fs::path(base_dir) / path).lexically_normal().string();
}

Status parse_ports(const std::string& path, const YAML::Node& node, const std::string& name,
                   Ports& ports) {
  YamlSection s = section_of(path, node, name);
  if (auto st = s.check_keys(); !st) return st;
  for (auto [key, field] :
       {std::pair{"api", &ports.api}, std::pair{"heartbeat", &ports.heartbeat},
        std::pair{"etcd_client", &ports.etcd_client}, std::pair{"etcd_peer", &ports.etcd_peer}}) {
    if (auto st = s.get_int(key, *field, 1, 65535); !st) return st;
  }
  const std::set<int> distinct = {ports.api, ports.heartbeat, ports.etcd_client, ports.etcd_peer};
  if (distinct.size() != 4) return config_error(path, node, name + ": ports must be distinct");
  return Ok{};
}

Status parse_cluster(const std::string& path, const YAML::Node& node, Config& c) {
  YamlSection s = section_of(path, node, "cluster");
  if (auto st = s.check_keys(); !st) return st;
  if (!node["name"]) return config_error(path, node, "cluster.name is required");
  for (auto [key, field] :
       {std::pair{"name", &c.cluster_name}, std::pair{"secret_file", &c.secret_file},
        std::pair{"token_file", &c.token_file}, std::pair{"tls_dir", &c.tls_dir}}) {
    if (auto st = s.get_string(key, *field); !st) return st;
  }
  const bool name_ok = !c.cluster_name.empty() && c.cluster_name.size() <= 32 &&
                       std::all_of(c.cluster_name.begin(), c.cluster_name.end(), [](char ch) {
                         return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
                       });
  if (!name_ok)
    return config_error(path, node["name"], "cluster.name must be 1-32 characters of a-z 0-9 -");
  if (auto st = s.get_int("heartbeat_ms", c.heartbeat_ms, 5, 10000); !st) return st;
  if (auto st = s.get_int("lease_ms", c.lease_ms, 20, 60000); !st) return st;
  if (c.lease_ms < 2 * c.heartbeat_ms)
    return config_error(
        path, node["lease_ms"] ? node["lease_ms"] : node,
        "lease_ms must be at least twice heartbeat_ms (" + std::to_string(c.heartbeat_ms) + ")");
  return Ok{};
}

Status parse_store(const std::string& path, const YAML::Node& node, Config& c) {
  YamlSection s = section_of(path, node, "store");
  if (auto st = s.check_keys(); !st) return st;
  StoreConfig& st_cfg = c.store;
  std::string mode = "embedded";
  if (auto st = s.get_string("mode", mode); !st) return st;
  if (mode == "embedded") {
    st_cfg.mode = StoreMode::kEmbedded;
  } else if (mode == "external") {
    st_cfg.mode = StoreMode::kExternal;
  } else {
    return config_error(path, node["mode"], "store.mode must be embedded or external");
  }
  for (auto [key, field] :
       {std::pair{"data_dir", &st_cfg.data_dir}, std::pair{"etcd_binary", &st_cfg.etcd_binary},
        std::pair{"prefix", &st_cfg.prefix}, std::pair{"ca_file", &st_cfg.ca_file},
        std::pair{"cert_file", &st_cfg.cert_file}, std::pair{"key_file", &st_cfg.key_file}}) {
    if (auto st = s.get_string(key, *field); !st) return st;
  }
  if (auto st = s.get_int("etcd_heartbeat_ms", st_cfg.etcd_heartbeat_ms, 10, 10000); !st) return st;
  if (auto st = s.get_int("etcd_election_ms", st_cfg.etcd_election_ms, 50, 50000); !st) return st;
  if (auto st = s.get_int("request_timeout_ms", st_cfg.request_timeout_ms, 100, 60000); !st)
    return st;
  if (st_cfg.etcd_election_ms < 5 * st_cfg.etcd_heartbeat_ms)
    return config_error(path, node["etcd_election_ms"] ? node["etcd_election_ms"] : node,
                        "etcd_election_ms must be at least 5 times etcd_heartbeat_ms");
  if (!st_cfg.prefix.empty() && (st_cfg.prefix.front() != '/' || st_cfg.prefix.back() == '/'))
    return config_error(path, node["prefix"], "store.prefix must start with / and not end with /");
  if (const YAML::Node eps = node["endpoints"]) {
    if (!eps.IsSequence()) return config_error(path, eps, "store.endpoints must be a list of URLs");
    for (const auto& e : eps) {
      const std::string url = e.IsScalar() ? e.Scalar() : "";
      if (url.rfind("https://", 0) != 0)
        return config_error(path, e, "store endpoint must be an https:// URL");
      st_cfg.endpoints.push_back(url);
    }
  }
  if (st_cfg.mode == StoreMode::kExternal && st_cfg.endpoints.empty())
    return config_error(path, node, "store.mode external needs store.endpoints");
  if (st_cfg.mode == StoreMode::kEmbedded && !st_cfg.endpoints.empty())
    return config_error(path, node["endpoints"], "store.endpoints is only for mode external");
  return Ok{};
}

// A mapping of string values (attributes, fence options).
Status parse_string_map(const std::string& path, const YAML::Node& node, const std::string& what,
                        bool check_keys, std::map<std::string, std::string>& out) {
  if (!node.IsMap()) return config_error(path, node, what + " must be a mapping");
  for (const auto& kv : node) {
    auto parsed = yaml_key(path, kv.first);
    if (!parsed) return parsed.error();
    const std::string& key = *parsed;
    if (check_keys && !valid_attribute_key(key))
      return config_error(path, kv.first, "attribute key '" + key + "' is not valid");
    if (!kv.second.IsScalar())
      return config_error(path, kv.second, what + " values must be strings");
    out[key] = kv.second.Scalar();
  }
  return Ok{};
}

Status parse_fencing(const std::string& path, const YAML::Node& node, Config& c) {
  YamlSection s = section_of(path, node, "fencing");
  if (auto st = s.check_keys(); !st) return st;
  FencingConfig& f = c.fencing;
  if (auto st = s.require("command"); !st) return st;
  if (auto st = s.get_string_list("command", f.command); !st) return st;
  if (f.command.empty() || f.command[0].empty() || f.command[0][0] != '/')
    return config_error(path, node["command"],
                        "fencing.command must start with an absolute path to the fence agent");
  if (const YAML::Node params = node["params"]) {
    if (auto st = parse_string_map(path, params, "fencing.params", false, f.params); !st) return st;
  }
  if (auto st = s.get_choice("action", f.action, {"off", "reboot"}); !st) return st;
  if (auto st = s.get_int("timeout_ms", f.timeout_ms, 1000, 600000); !st) return st;
  return Ok{};
}

Status parse_watchdog(const std::string& path, const YAML::Node& node, Config& c) {
  YamlSection s = section_of(path, node, "watchdog");
  if (auto st = s.check_keys(); !st) return st;
  if (auto st = s.require("device"); !st) return st;
  if (auto st = s.get_string("device", c.watchdog.device); !st) return st;
  if (c.watchdog.device.empty() || c.watchdog.device[0] != '/')
    return config_error(path, node["device"], "watchdog.device must be an absolute path");
  if (auto st = s.get_int("timeout_ms", c.watchdog.timeout_ms, 1000, 600000); !st) return st;
  return Ok{};
}

Status parse_agents(const std::string& path, const YAML::Node& node, Config& c) {
  YamlSection s = section_of(path, node, "agents");
  if (auto st = s.check_keys(); !st) return st;
  if (auto st = s.get_string("ocf_root", c.ocf_root); !st) return st;
  if (c.ocf_root.empty() || c.ocf_root[0] != '/')
    return config_error(path, node["ocf_root"], "agents.ocf_root must be an absolute path");
  return Ok{};
}

Status parse_nodes(const std::string& path, const YAML::Node& node, Config& c) {
  if (!node.IsSequence() || node.size() == 0)
    return config_error(path, node, "nodes must be a non-empty list");
  std::set<std::string> names;
  std::set<std::string> endpoints;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const YAML::Node n = node[i];
    const std::string label = "nodes[" + std::to_string(i) + "]";
    YamlSection s = section_of(path, n, label);
    if (auto st = s.check_keys(); !st) return st;
    NodeConfig nc;
    nc.ports = c.default_ports;
    if (!n["name"]) return config_error(path, n, label + ".name is required");
    if (!n["address"]) return config_error(path, n, label + ".address is required");
    if (auto st = s.get_string("name", nc.name); !st) return st;
    if (auto st = s.get_string("address", nc.address); !st) return st;
    if (!valid_node_name(nc.name))
      return config_error(
          path, n["name"],
          "node name '" + nc.name + "' must be 1-63 characters of a-z 0-9 - _ . (and not 'ca')");
    if (!names.insert(nc.name).second)
      return config_error(path, n["name"], "duplicate node name '" + nc.name + "'");
    if (!valid_ip_address(nc.address))
      return config_error(path, n["address"],
                          "address '" + nc.address + "' is not an IPv4 or IPv6 address");
    if (const YAML::Node attrs = n["attributes"]) {
      if (auto st = parse_string_map(path, attrs, "attributes", true, nc.attributes); !st)
        return st;
    }
    if (const YAML::Node fence = n["fence"]) {
      if (auto st = parse_string_map(path, fence, label + ".fence", false, nc.fence); !st)
        return st;
    }
    if (const YAML::Node ports = n["ports"]) {
      if (auto st = parse_ports(path, ports, label + ".ports", nc.ports); !st) return st;
    }
    for (int port : {nc.ports.api, nc.ports.heartbeat, nc.ports.etcd_client, nc.ports.etcd_peer}) {
      if (!endpoints.insert(nc.address + "#" + std::to_string(port)).second)
        return config_error(path, n,
                            "node '" + nc.name + "' uses address " + nc.address + " port " +
                                std::to_string(port) + " that another node uses too");
    }
    c.nodes.push_back(std::move(nc));
  }
  return Ok{};
}

}  // namespace

const NodeConfig* Config::find_node(const std::string& name) const {
  for (const auto& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

bool valid_node_name(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  // NAME.crt and NAME.key live beside the CA's ca.crt and ca.key.
  if (name == "ca") return false;
  if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9'))) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
           ch == '.';
  });
}

bool valid_ip_address(const std::string& address) {
  unsigned char buf[16];
  return inet_pton(AF_INET, address.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, address.c_str(), buf) == 1;
}

bool valid_attribute_key(const std::string& key) {
  if (key.empty() || key.size() > 63) return false;
  return std::all_of(key.begin(), key.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == '/';
  });
}

const std::vector<ConfigKeyword>& config_keywords() { return kKeywords; }

namespace {
Result<Config> parse_root(const YAML::Node& root, const std::string& path);
}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& path) {
  return parse_yaml<Config>(text, path,
                            [&](const YAML::Node& root) { return parse_root(root, path); });
}

namespace {
Result<Config> parse_root(const YAML::Node& root, const std::string& path) {
  if (!root.IsMap()) return config_error(path, root, "the configuration must be a mapping");
  Config c;
  c.path = fs::absolute(path).lexically_normal().string();
  const std::string base_dir = fs::path(c.path).parent_path().string();
  static const std::set<std::string> kSections = {"cluster", "store",    "ports", "nodes",
                                                  "fencing", "watchdog", "agents"};
  for (const auto& item : root) {
    auto parsed = yaml_key(path, item.first);
    if (!parsed) return parsed.error();
    const std::string& key = *parsed;
    if (!kSections.count(key))
      return config_error(
          path, item.first,
          "unknown key '" + key +
              "' (expected one of: agents, cluster, fencing, nodes, ports, store, watchdog)");
  }
  if (!root["cluster"]) return config_error(path, root, "the cluster section is required");
  if (auto st = parse_cluster(path, root["cluster"], c); !st) return st.error();
  if (const YAML::Node ports = root["ports"]) {
    if (auto st = parse_ports(path, ports, "ports", c.default_ports); !st) return st.error();
  }
  if (const YAML::Node store = root["store"]) {
    if (auto st = parse_store(path, store, c); !st) return st.error();
  }
  if (const YAML::Node fencing = root["fencing"]) {
    if (auto st = parse_fencing(path, fencing, c); !st) return st.error();
  }
  if (const YAML::Node watchdog = root["watchdog"]) {
    if (auto st = parse_watchdog(path, watchdog, c); !st) return st.error();
  }
  if (const YAML::Node agents = root["agents"]) {
    if (auto st = parse_agents(path, agents, c); !st) return st.error();
  }
  if (!root["nodes"]) return config_error(path, root, "the nodes section is required");
  if (auto st = parse_nodes(path, root["nodes"], c); !st) return st.error();
  if (c.secret_file.empty()) c.secret_file = "secret";
  if (c.token_file.empty()) c.token_file = "admin.token";
  if (c.tls_dir.empty()) c.tls_dir = "tls";
  if (c.store.data_dir.empty()) c.store.data_dir = "data";
  if (c.store.prefix.empty()) c.store.prefix = "/bulwark/" + c.cluster_name;
  c.secret_file = absolute_from(base_dir, c.secret_file);
  c.token_file = absolute_from(base_dir, c.token_file);
  c.tls_dir = absolute_from(base_dir, c.tls_dir);
  c.store.data_dir = absolute_from(base_dir, c.store.data_dir);
  c.store.ca_file = absolute_from(base_dir, c.store.ca_file);
  c.store.cert_file = absolute_from(base_dir, c.store.cert_file);
  c.store.key_file = absolute_from(base_dir, c.store.key_file);
  return c;
}

}  // namespace

Result<Config> load_config(const std::string& path) {
  auto text = read_config_file(path);
  if (!text) return text.error();
  return parse_config(*text, path);
}

std::string render_config(const Config& c) {
  YAML::Emitter out;
  const std::string base_dir = fs::path(c.path).parent_path().string();
  auto rel = [&](const std::string& p) {
    return fs::path(p).lexically_relative(base_dir).string();
  };
  out << YAML::BeginMap;
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << c.cluster_name;
  out << YAML::Key << "secret_file" << YAML::Value << rel(c.secret_file);
  out << YAML::Key << "token_file" << YAML::Value << rel(c.token_file);
  out << YAML::Key << "tls_dir" << YAML::Value << rel(c.tls_dir);
  out << YAML::Key << "heartbeat_ms" << YAML::Value << c.heartbeat_ms;
  out << YAML::Key << "lease_ms" << YAML::Value << c.lease_ms;
  out << YAML::EndMap;
  out << YAML::Key << "store" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "mode" << YAML::Value
      << (c.store.mode == StoreMode::kEmbedded ? "embedded" : "external");
  out << YAML::Key << "data_dir" << YAML::Value << rel(c.store.data_dir);
  out << YAML::Key << "etcd_heartbeat_ms" << YAML::Value << c.store.etcd_heartbeat_ms;
  out << YAML::Key << "etcd_election_ms" << YAML::Value << c.store.etcd_election_ms;
  // Everything else only when set, so that `bulwark dev add` rewriting a
  // loaded config keeps what the operator put there.
  const StoreConfig defaults;
  if (c.store.etcd_binary != defaults.etcd_binary)
    out << YAML::Key << "etcd_binary" << YAML::Value << c.store.etcd_binary;
  if (c.store.request_timeout_ms != defaults.request_timeout_ms)
    out << YAML::Key << "request_timeout_ms" << YAML::Value << c.store.request_timeout_ms;
  if (!c.store.prefix.empty() && c.store.prefix != "/bulwark/" + c.cluster_name)
    out << YAML::Key << "prefix" << YAML::Value << c.store.prefix;
  if (!c.store.endpoints.empty()) {
    out << YAML::Key << "endpoints" << YAML::Value << YAML::BeginSeq;
    for (const auto& e : c.store.endpoints) out << e;
    out << YAML::EndSeq;
  }
  for (auto [key, value] :
       {std::pair{"ca_file", &c.store.ca_file}, std::pair{"cert_file", &c.store.cert_file},
        std::pair{"key_file", &c.store.key_file}}) {
    if (!value->empty()) out << YAML::Key << key << YAML::Value << rel(*value);
  }
  out << YAML::EndMap;
  if (!c.fencing.command.empty()) {
    out << YAML::Key << "fencing" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "command" << YAML::Value << YAML::Flow << c.fencing.command;
    if (!c.fencing.params.empty()) out << YAML::Key << "params" << YAML::Value << c.fencing.params;
    out << YAML::Key << "action" << YAML::Value << c.fencing.action;
    out << YAML::Key << "timeout_ms" << YAML::Value << c.fencing.timeout_ms;
    out << YAML::EndMap;
  }
  if (!c.watchdog.device.empty()) {
    out << YAML::Key << "watchdog" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "device" << YAML::Value << c.watchdog.device;
    out << YAML::Key << "timeout_ms" << YAML::Value << c.watchdog.timeout_ms;
    out << YAML::EndMap;
  }
  if (c.ocf_root != kDefaultOcfRoot) {
    out << YAML::Key << "agents" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "ocf_root" << YAML::Value << c.ocf_root;
    out << YAML::EndMap;
  }
  out << YAML::Key << "ports" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "api" << YAML::Value << c.default_ports.api;
  out << YAML::Key << "heartbeat" << YAML::Value << c.default_ports.heartbeat;
  out << YAML::Key << "etcd_client" << YAML::Value << c.default_ports.etcd_client;
  out << YAML::Key << "etcd_peer" << YAML::Value << c.default_ports.etcd_peer;
  out << YAML::EndMap;
  out << YAML::Key << "nodes" << YAML::Value << YAML::BeginSeq;
  for (const auto& n : c.nodes) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << n.name;
    out << YAML::Key << "address" << YAML::Value << n.address;
    if (!n.attributes.empty()) {
      out << YAML::Key << "attributes" << YAML::Value << YAML::BeginMap;
      for (const auto& [k, v] : n.attributes) out << YAML::Key << k << YAML::Value << v;
      out << YAML::EndMap;
    }
    if (!n.fence.empty()) out << YAML::Key << "fence" << YAML::Value << n.fence;
    const Ports& p = n.ports;
    const Ports& d = c.default_ports;
    if (p.api != d.api || p.heartbeat != d.heartbeat || p.etcd_client != d.etcd_client ||
        p.etcd_peer != d.etcd_peer) {
      out << YAML::Key << "ports" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "api" << YAML::Value << p.api;
      out << YAML::Key << "heartbeat" << YAML::Value << p.heartbeat;
      out << YAML::Key << "etcd_client" << YAML::Value << p.etcd_client;
      out << YAML::Key << "etcd_peer" << YAML::Value << p.etcd_peer;
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace bulwark
