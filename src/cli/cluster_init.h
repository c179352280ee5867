// Creating a cluster's files: configuration, CA and node certificates, the
// cluster secret and the admin token. Used by `bulwark init` and `bulwark dev`.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/error.h"

namespace bulwark {

struct InitOptions {
  std::string dir;
  std::string cluster_name;
  std::vector<std::pair<std::string, std::string>> nodes;  // name, address
  int heartbeat_ms = Config{}.heartbeat_ms;
  int lease_ms = Config{}.lease_ms;
  // Embedded etcd's timings; 0: the config's defaults.
  int etcd_heartbeat_ms = 0;
  int etcd_election_ms = 0;
};

// Timing profiles for `bulwark init --profile` (docs/operations.md, "Virtual
// IPs"): `default` is the config's defaults; `fast` halves a failover for
// more heartbeat traffic and less tolerance of a slow node or disk.
struct TimingProfile {
  int heartbeat_ms;
  int lease_ms;
  int etcd_heartbeat_ms;
  int etcd_election_ms;
};
std::optional<TimingProfile> timing_profile(const std::string& name);

// Writes DIR/bulwark.yaml, DIR/tls/{ca,NODE}.{crt,key}, DIR/secret and
// DIR/admin.token (secrets 0600). Refuses to overwrite an existing cluster.
// The config is validated by the same parser bulwarkd uses before anything
// is written.
Result<Config> init_cluster(const InitOptions& options);

// Issues a certificate for one more node with the cluster's CA.
Status issue_certificate(const Config& config, const std::string& name, const std::string& address);

}  // namespace bulwark
