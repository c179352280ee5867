// Creating a cluster's files: configuration, CA and node certificates, the
// cluster secret and the admin token. Used by `bulwark init` and `bulwark dev`.
#pragma once

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
  int heartbeat_ms = 50;
  int lease_ms = 300;
};

// Writes DIR/bulwark.yaml, DIR/tls/{ca,NODE}.{crt,key}, DIR/secret and
// DIR/admin.token (secrets 0600). Refuses to overwrite an existing cluster.
// The config is validated by the same parser bulwarkd uses before anything
// is written.
Result<Config> init_cluster(const InitOptions& options);

// Issues a certificate for one more node with the cluster's CA.
Status issue_certificate(const Config& config, const std::string& name, const std::string& address);

}  // namespace bulwark
