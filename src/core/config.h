// bulwark.yaml: the configuration every bulwarkd of a cluster reads. Parsing
// reports the first error as "file:line:column: message" and never yields a
// half-valid Config.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/yaml_section.h"

namespace bulwark {

struct Ports {
  int api = 7400;
  int heartbeat = 7401;
  int etcd_client = 2379;
  int etcd_peer = 2380;
};

struct NodeConfig {
  std::string name;
  std::string address;  // an IPv4 or IPv6 literal
  std::map<std::string, std::string> attributes;
  std::map<std::string, std::string> fence;  // this node's fence agent options (port, ip...)
  Ports ports;
};

enum class StoreMode { kEmbedded, kExternal };

struct StoreConfig {
  StoreMode mode = StoreMode::kEmbedded;
  std::string data_dir;  // absolute after loading
  std::string etcd_binary = "/usr/bin/etcd";
  int etcd_heartbeat_ms = 50;
  int etcd_election_ms = 300;
  int request_timeout_ms = 2000;
  std::string prefix;                        // default /bulwark/<cluster>
  std::vector<std::string> endpoints;        // external mode: https://host:port
  std::string ca_file, cert_file, key_file;  // external mode; default from tls_dir
};

// A fence agent: powers a lost node off, so that whatever it ran is known
// to be stopped (DESIGN.md layer 2). The fence-agents interface: options as
// key=value lines on stdin (action, plug, and the params).
struct FencingConfig {
  std::vector<std::string> command;           // argv; empty: no fencing
  std::map<std::string, std::string> params;  // sent on every call
  std::string action = "off";                 // off | reboot
  int timeout_ms = 60000;
};

// The node's watchdog device: the machine is reset when bulwarkd stops
// feeding it, which it does while the node has lost its lease with an
// exclusive resource not yet stopped (a hung stop), or when bulwarkd itself
// hangs or dies. The coordinator then counts a lost node's exclusive
// resources as stopped once its lease lapse is proven plus `timeout_ms`.
struct WatchdogConfig {
  std::string device;  // empty: no watchdog
  int timeout_ms = 10000;
};

// Where OCF resource agents live (Debian's resource-agents).
inline constexpr const char* kDefaultOcfRoot = "/usr/lib/ocf";

struct Config {
  std::string path;  // the file it was read from, absolute
  std::string cluster_name;
  std::string secret_file;
  std::string token_file;
  std::string tls_dir;
  int heartbeat_ms = 50;
  int lease_ms = 300;
  StoreConfig store;
  FencingConfig fencing;
  WatchdogConfig watchdog;
  std::string ocf_root = kDefaultOcfRoot;  // agents.ocf_root
  Ports default_ports;
  std::vector<NodeConfig> nodes;

  const NodeConfig* find_node(const std::string& name) const;
  std::string ca_file() const { return tls_dir + "/ca.crt"; }
  std::string cert_file(const std::string& node) const { return tls_dir + "/" + node + ".crt"; }
  std::string key_file(const std::string& node) const { return tls_dir + "/" + node + ".key"; }
  std::string node_data_dir(const std::string& node) const { return store.data_dir + "/" + node; }
};

// Reads and validates the file. Relative paths in it are taken relative to
// the directory of the file.
Result<Config> load_config(const std::string& path);
// Same, from text; `path` is used for messages and relative paths.
Result<Config> parse_config(const std::string& text, const std::string& path);

// Validation shared with the API: names and addresses that the config and
// `bulwark node add` accept.
bool valid_node_name(const std::string& name);
bool valid_ip_address(const std::string& address);
bool valid_attribute_key(const std::string& key);

// Every keyword the config accepts, for the configuration reference and the
// test that keeps docs/configuration.md complete.
const std::vector<ConfigKeyword>& config_keywords();

// Renders a Config back to YAML (used by `bulwark init` and `bulwark dev`).
std::string render_config(const Config& config);

}  // namespace bulwark
