#include "store/embedded_etcd.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <filesystem>

#include "sys/process.h"

namespace bulwark {

namespace fs = std::filesystem;

std::string url_host(const std::string& address) {
  return address.find(':') != std::string::npos ? "[" + address + "]" : address;
}
std::string peer_url(const std::string& address, int port) {
  return "https://" + url_host(address) + ":" + std::to_string(port);
}
std::string client_url(const std::string& address, int port) {
  return "https://" + url_host(address) + ":" + std::to_string(port);
}

EmbeddedEtcd::EmbeddedEtcd(const Clock& clock, const Config& config, const NodeConfig& self)
    : clock_(clock), config_(config), self_(self) {}

EmbeddedEtcd::~EmbeddedEtcd() { stop(); }

std::string EmbeddedEtcd::data_dir() const { return config_.node_data_dir(self_.name) + "/etcd"; }

Status EmbeddedEtcd::prepare(EtcdClient& probe) {
  std::error_code ec;
  fs::create_directories(config_.node_data_dir(self_.name), ec);
  if (ec)
    return make_error(Errc::kIo,
                      "cannot create " + config_.node_data_dir(self_.name) + ": " + ec.message());
  ::chmod(config_.node_data_dir(self_.name).c_str(), 0700);
  if (!fs::exists(config_.store.etcd_binary))
    return make_error(Errc::kInvalid, config_.store.etcd_binary +
                                          ": etcd not found (install Debian's etcd-server)");
  const std::string mine = peer_url(self_.address, self_.ports.etcd_peer);
  auto members = probe.member_list();
  if (fs::exists(data_dir() + "/member")) {
    // A member that the running cluster no longer lists was removed: its
    // data must not come back (etcd would refuse it over and over).
    if (members && std::none_of(members->begin(), members->end(), [&](const EtcdMember& m) {
          return std::find(m.peer_urls.begin(), m.peer_urls.end(), mine) != m.peer_urls.end();
        }))
      return make_error(
          Errc::kInvalid,
          "node '" + self_.name + "' was removed from the cluster: its etcd member (" + mine +
              ") is no longer a member, so the data in " + data_dir() +
              " is of no use; to bring this host back, empty " + config_.node_data_dir(self_.name) +
              ", run bulwark node add " + self_.name + " --address " + self_.address +
              " on the cluster, then start bulwarkd again");
    // A member with data restarts from it; the initial-cluster flags are
    // ignored by etcd then, but must still name this member.
    initial_cluster_ = self_.name + "=" + mine;
    join_existing_ = true;
    return Ok{};
  }
  if (members) {
    std::string cluster;
    bool listed = false;
    for (const auto& m : *members) {
      const bool me = std::find(m.peer_urls.begin(), m.peer_urls.end(), mine) != m.peer_urls.end();
      // A member publishes its client URLs when it first starts: one that
      // has them has run before, and its data is gone. Rejoining under its
      // old identity with an empty log could lose committed writes. (A
      // founding member starting after the others have bootstrapped has a
      // name but no client URLs yet, and joins.)
      if (me && !m.client_urls.empty())
        return make_error(Errc::kInvalid,
                          "node '" + self_.name + "' is an etcd member that has run before, but " +
                              data_dir() + " is empty; replace it: bulwark node remove " +
                              self_.name + ", then bulwark node add " + self_.name + " --address " +
                              self_.address);
      listed = listed || me;
      const std::string name = me ? self_.name : m.name;
      if (name.empty()) continue;  // another member that has not started yet
      for (const auto& u : m.peer_urls) cluster += (cluster.empty() ? "" : ",") + name + "=" + u;
    }
    if (!listed)
      return make_error(Errc::kInvalid, "the running cluster does not list node '" + self_.name +
                                            "' (" + mine +
                                            "); add it first with: bulwark node add " + self_.name +
                                            " --address " + self_.address);
    initial_cluster_ = cluster;
    join_existing_ = true;
    spdlog::info("etcd: joining the running cluster as a new member ({})", initial_cluster_);
    return Ok{};
  }
  // Nobody answers: this is the first start of the founding nodes.
  for (const auto& n : config_.nodes) {
    initial_cluster_ += (initial_cluster_.empty() ? "" : ",") + n.name + "=" +
                        peer_url(n.address, n.ports.etcd_peer);
  }
  join_existing_ = false;
  spdlog::info("etcd: no running member answered; bootstrapping {}", initial_cluster_);
  return Ok{};
}

std::vector<std::string> EmbeddedEtcd::command_line() const {
  const auto ms = [](int v) { return std::to_string(v); };
  const std::string client = client_url(self_.address, self_.ports.etcd_client);
  const std::string peer = peer_url(self_.address, self_.ports.etcd_peer);
  return {config_.store.etcd_binary, "--name=" + self_.name, "--data-dir=" + data_dir(),
          "--listen-client-urls=" + client, "--advertise-client-urls=" + client,
          "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
          "--initial-cluster=" + initial_cluster_,
          std::string("--initial-cluster-state=") + (join_existing_ ? "existing" : "new"),
          "--initial-cluster-token=bulwark-" + config_.cluster_name,
          "--heartbeat-interval=" + ms(config_.store.etcd_heartbeat_ms),
          "--election-timeout=" + ms(config_.store.etcd_election_ms), "--pre-vote=true",
          "--cert-file=" + config_.cert_file(self_.name),
          "--key-file=" + config_.key_file(self_.name), "--trusted-ca-file=" + config_.ca_file(),
          "--client-cert-auth=true", "--peer-cert-file=" + config_.cert_file(self_.name),
          "--peer-key-file=" + config_.key_file(self_.name),
          "--peer-trusted-ca-file=" + config_.ca_file(), "--peer-client-cert-auth=true",
          "--auto-compaction-mode=revision", "--auto-compaction-retention=10000",
          // Keeps idle watch streams alive and lets caches prove they are
          // current without a write.
          "--experimental-watch-progress-notify-interval=5s", "--logger=zap",
          "--log-outputs=stderr"};
}

Status EmbeddedEtcd::start() {
  SpawnOptions o;
  o.argv = command_line();
  // ETCD_* variables in our environment would silently override the flags.
  o.env = current_environment({"ETCD_", "ETCDCTL_"});
  o.log_file = config_.node_data_dir(self_.name) + "/etcd.log";
  o.death_signal = SIGTERM;  // a crashed bulwarkd must not leave its member behind
  auto pid = spawn_process(o);
  if (!pid) return pid.error();
  pid_ = *pid;
  started_mono_ms_ = clock_.mono_ms();
  spdlog::info("etcd: started member {} (pid {})", self_.name, pid_);
  return Ok{};
}

void EmbeddedEtcd::supervise() {
  if (abandoned_) return;
  const int64_t now = clock_.mono_ms();
  if (pid_ > 0) {
    const auto status = try_reap(pid_);
    if (!status) return;
    // 100 ms after a member that ran for a while; doubling up to 5 s while
    // it keeps dying young.
    if (now - started_mono_ms_ > 30000) backoff_ms_ = 100;
    spdlog::warn("etcd: member exited ({}); restarting in {} ms (log: {}/etcd.log)",
                 describe_wait_status(*status), backoff_ms_, config_.node_data_dir(self_.name));
    pid_ = -1;
    next_start_mono_ms_ = now + backoff_ms_;
    backoff_ms_ = std::min<int64_t>(backoff_ms_ * 2, 5000);
    return;
  }
  if (now < next_start_mono_ms_) return;
  // After its first start the member has a data dir: it restarts from it.
  if (fs::exists(data_dir() + "/member")) join_existing_ = true;
  if (auto st = start(); !st) {
    spdlog::error("etcd: cannot start: {}", st.error().message);
    next_start_mono_ms_ = now + 5000;
    return;
  }
  ++restarts_;
}

void EmbeddedEtcd::stop() {
  if (pid_ > 0) {
    terminate_process(pid_, 5000);
    spdlog::info("etcd: member {} stopped", self_.name);
    pid_ = -1;
  }
}

void EmbeddedEtcd::abandon() {
  abandoned_ = true;
  stop();
}

}  // namespace bulwark
