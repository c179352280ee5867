#include "cli/cluster_init.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "security/certs.h"
#include "security/crypto.h"

namespace bulwark {

namespace fs = std::filesystem;

namespace {
// Creates the file with its final mode from the start: a secret must never
// be readable by others, not even for a moment.
Status write_file(const std::string& path, const std::string& content, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return make_error(Errc::kIo, "cannot write " + path);
  ::fchmod(fd, mode);  // an existing file keeps its old mode otherwise
  const bool ok =
      ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ::close(fd);
  if (!ok) return make_error(Errc::kIo, "cannot write " + path);
  return Ok{};
}
// The addresses a node's certificate names. etcd checks a TLS client's
// certificate against the connection's source address; on loopback the
// kernel picks 127.0.0.1 as the source whatever 127.x address the node
// listens on, so loopback nodes also name 127.0.0.1.
std::vector<std::string> certificate_addresses(const std::string& address) {
  std::vector<std::string> out = {address};
  if (address.rfind("127.", 0) == 0 && address != "127.0.0.1") out.push_back("127.0.0.1");
  return out;
}

}  // namespace

std::optional<TimingProfile> timing_profile(const std::string& name) {
  if (name == "default") {
    const Config c;
    return TimingProfile{c.heartbeat_ms, c.lease_ms, c.store.etcd_heartbeat_ms,
                         c.store.etcd_election_ms};
  }
  if (name == "fast") return TimingProfile{20, 120, 20, 150};
  return std::nullopt;
}

Result<Config> init_cluster(const InitOptions& o) {
  const std::string dir = fs::absolute(o.dir).lexically_normal().string();
  const std::string config_path = dir + "/bulwark.yaml";
  if (fs::exists(config_path))
    return make_error(Errc::kInvalid,
                      config_path + " already exists; refusing to overwrite a cluster");
  // Build the YAML and run it through the daemon's own parser first, so that
  // a bad name or address is refused before any file is written.
  std::string yaml = "cluster:\n  name: " + o.cluster_name +
                     "\n  heartbeat_ms: " + std::to_string(o.heartbeat_ms) +
                     "\n  lease_ms: " + std::to_string(o.lease_ms) + "\n";
  if (o.etcd_heartbeat_ms > 0 || o.etcd_election_ms > 0) {
    yaml += "store:\n";
    if (o.etcd_heartbeat_ms > 0)
      yaml += "  etcd_heartbeat_ms: " + std::to_string(o.etcd_heartbeat_ms) + "\n";
    if (o.etcd_election_ms > 0)
      yaml += "  etcd_election_ms: " + std::to_string(o.etcd_election_ms) + "\n";
  }
  yaml += "nodes:\n";
  for (const auto& [name, address] : o.nodes) {
    yaml += "  - {name: \"" + name + "\", address: \"" + address + "\"}\n";
  }
  auto config = parse_config(yaml, config_path);
  if (!config) return config.error();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(Errc::kIo, "cannot create " + dir + ": " + ec.message());
  if (auto st = create_ca(config->tls_dir, config->cluster_name); !st) return st.error();
  ::chmod(config->tls_dir.c_str(), 0700);
  for (const auto& n : config->nodes) {
    if (auto st = issue_node_certificate(config->tls_dir, n.name, certificate_addresses(n.address));
        !st)
      return st.error();
  }
  if (auto st = write_file(config->secret_file, random_hex(32) + "\n", 0600); !st)
    return st.error();
  if (auto st = write_file(config->token_file, random_hex(32) + "\n", 0600); !st) return st.error();
  if (auto st = write_file(config_path, render_config(*config), 0644); !st) return st.error();
  return config;
}

Status issue_certificate(const Config& config, const std::string& name,
                         const std::string& address) {
  if (!valid_node_name(name)) return make_error(Errc::kInvalid, "invalid node name '" + name + "'");
  if (!valid_ip_address(address))
    return make_error(Errc::kInvalid, "address '" + address + "' is not an IPv4 or IPv6 address");
  return issue_node_certificate(config.tls_dir, name, certificate_addresses(address));
}

}  // namespace bulwark
