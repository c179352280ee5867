#include "daemon/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <stop_token>
#include <thread>

#include "agent/agent_service.h"
#include "api/api_server.h"
#include "classes/exec/exec_runner.h"
#include "classes/ocf/ocf_runner.h"
#include "classes/proxy/proxy_runner.h"
#include "classes/registry/agent_classes.h"
#include "classes/systemd/systemd_runner.h"
#include "classes/vip/vip_runner.h"
#include "coordinator/coordinator.h"
#include "daemon/node_changes.h"
#include "daemon/resource_operations.h"
#include "membership/membership_service.h"
#include "security/certs.h"
#include "security/crypto.h"
#include "store/embedded_etcd.h"
#include "store/store.h"
#include "sys/process.h"
#include "sys/process_group.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

// How long etcd may keep refusing a membership change right after members
// (re)connected ("unhealthy cluster") before the API gives up.
constexpr int kMemberChangeRetryMs = 12000;
constexpr int kHealthIntervalMs = 1000;
// How long a shutdown waits for the node's resources to stop.
constexpr int kAgentShutdownMs = 60000;

// The agent's runtime directory (pid files, OCF state). Like /run, it must
// not survive a reboot: a pid recorded before it names another process now.
// It is emptied when the boot id recorded in it is not this boot's.
std::string runtime_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::string boot_id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot_id;
  std::string recorded;
  std::ifstream(dir + "/boot_id") >> recorded;
  if (recorded != boot_id) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    std::ofstream(dir + "/boot_id") << boot_id << "\n";
  }
  return dir;
}

struct EtcdHealth {
  bool healthy = false;
  std::string endpoint;
  std::string version;
  std::string leader;  // member name, if known
  int64_t raft_term = 0;
  std::string error;
};

// A random node uid (NodeRecord::uid), for a node added to a running cluster.
std::string new_node_uid() {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(random_u64()));
  return buf;
}

// The uid of a founding node: derived from the cluster secret, so that the
// node knows it before the cluster is initialised (and records it before
// its etcd member first starts), whichever daemon initialises the cluster.
std::string founding_node_uid(const std::string& secret, const std::string& node) {
  const std::string data = "bulwark founding node " + node;
  const Digest d = hmac_sha256({reinterpret_cast<const uint8_t*>(secret.data()), secret.size()},
                               {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
  std::string out;
  for (std::size_t i = 0; i < 8; ++i) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", d[i]);
    out += hex;
  }
  return out;
}

class Daemon final : public ApiBackend {
 public:
  Daemon(Config config, NodeConfig self, std::string secret, std::string token,
         DaemonOptions options)
      : config_(std::move(config)),
        self_(std::move(self)),
        secret_(std::move(secret)),
        token_(std::move(token)),
        options_(options) {}

  int run();

  json status() override;
  Result<int64_t> add_node(const NodeAddRequest& req) override;
  Result<int64_t> remove_node(const std::string& name) override;
  Result<int64_t> set_node_attributes(const std::string& name,
                                      const std::map<std::string, std::string>& set,
                                      const std::vector<std::string>& unset) override;
  Result<int64_t> set_node_mode(const std::string& name, const std::string& mode) override {
    return resource_ops_->set_node_mode(name, mode);
  }
  Result<json> apply_resources(const ApplyRequest& request) override {
    return resource_ops_->apply(request);
  }
  Result<json> export_resources() override { return resource_ops_->export_resources(); }
  json resources() override { return resource_ops_->list(); }
  Result<json> resource_directive(const DirectiveRequest& request) override {
    return resource_ops_->directive(request);
  }
  Result<int64_t> set_maintenance(bool enabled) override {
    return resource_ops_->set_maintenance(enabled);
  }

 private:
  Status require_quorum();
  Result<int64_t> committed(Result<int64_t> r);
  // The nodes from bulwark.yaml, and the cluster's nodes: from the store once
  // it was initialised, before that the founding nodes.
  std::vector<NodeRecord> founding_nodes() const;
  std::vector<NodeRecord> cluster_nodes(const ClusterState& state) const;
  std::vector<std::string> etcd_endpoints(const ClusterState& state) const;
  std::vector<PeerEndpoint> members_from(const ClusterState& state) const;
  void health_loop(const std::stop_token& stop);
  // Daemon::run's parts. take_signals blocks the signals the control loop
  // waits for (before any thread starts, so that every thread inherits the
  // mask). start makes and starts every part; an exit code if one failed.
  // control_tick is one turn of the control loop; true when the daemon is
  // to stop (with exit_code set if for an error). Whatever start made is
  // stopped by its destructor, in the reverse order of the members below,
  // on every path out.
  sigset_t take_signals();
  int start();
  bool control_tick(const sigset_t& signals, int& exit_code);
  // The member list (heartbeats, etcd endpoints) follows the store's nodes.
  void follow_members(const ClusterState& state);
  // This node is still a member and its data its own; an error (kNotFound:
  // removed) when it must stop.
  Status still_registered(const ClusterState& state);
  // This node is a member of the cluster, and its data dir is this node's
  // (not an earlier node's of the same name): from what `record` says
  // (nullopt: the cluster has no such node). kInvalid with what to do.
  Status check_registration(bool initialised, const std::optional<NodeRecord>& record);
  std::string uid_path() const { return config_.node_data_dir(self_.name) + "/node.uid"; }
  Status write_uid(const std::string& uid);
  // --detach-resources at shutdown: puts this node in maintenance unless
  // it (or the cluster) is already, so that its resources are left running.
  void detach_resources();

  Config config_;
  NodeConfig self_;
  std::string secret_;
  std::string token_;
  DaemonOptions options_;
  SystemClock clock_;
  int64_t started_mono_ms_ = 0;

  // The parts, each stopped by its destructor: declared in the order they
  // start, so that each is gone before what it uses (the agent and
  // coordinator before the store and membership, the store before etcd).
  std::unique_ptr<EtcdClient> etcd_;
  std::unique_ptr<EmbeddedEtcd> embedded_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<MembershipService> membership_;
  ProcessFenceLauncher fence_launcher_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<AgentService> agent_;
  std::unique_ptr<ResourceOperations> resource_ops_;

  // The daemon's own state, which the API's and the health thread's calls
  // read and write.
  std::mutex health_mu_;
  EtcdHealth health_;
  // check_registration passed against the initialised cluster.
  bool registration_checked_ = false;
  bool seen_in_store_ = false;         // this node's record, since start
  std::vector<PeerEndpoint> members_;  // as membership_ has them
  std::mutex write_mu_;                // one membership change at a time through this node

  // Declared last, so stopped first, while everything their calls touch
  // still exists: the API (its handler threads call into every part and the
  // state above), and the health thread (asked to stop, then joined).
  std::unique_ptr<ApiServer> api_;
  std::jthread health_thread_;
};

std::vector<NodeRecord> Daemon::founding_nodes() const {
  std::vector<NodeRecord> out;
  for (const auto& n : config_.nodes) {
    NodeRecord r;
    r.name = n.name;
    r.address = n.address;
    r.attributes = n.attributes;
    r.ports = n.ports;
    r.uid = founding_node_uid(secret_, n.name);
    out.push_back(r);
  }
  return out;
}

Status Daemon::check_registration(bool initialised, const std::optional<NodeRecord>& record) {
  namespace fs = std::filesystem;
  const std::string dir = config_.node_data_dir(self_.name);
  if (!initialised) return Ok{};  // founding nodes before the cluster's first coordinator
  if (!record)
    return make_error(Errc::kInvalid,
                      "node " + self_.name + " is not a member of cluster " + config_.cluster_name +
                          " (it was removed, or never added): its data in " + dir +
                          " is of no use; to bring this host back, empty " + dir +
                          ", run bulwark node add " + self_.name + " --address " + self_.address +
                          " on the cluster, then start bulwarkd again");
  if (record->uid.empty()) return Ok{};  // recorded before nodes had uids
  std::string mine;
  std::ifstream(uid_path()) >> mine;
  // The first start on this data dir (or one of an older version that
  // recorded none): from now on it is this node's.
  if (mine.empty()) return write_uid(record->uid);
  if (mine != record->uid)
    return make_error(Errc::kInvalid,
                      dir + " holds the data of an earlier node named " + self_.name +
                          ", which was removed from the cluster; the cluster's " + self_.name +
                          " is a new node: empty " + dir + " and start bulwarkd again");
  return Ok{};
}

Status Daemon::write_uid(const std::string& uid) {
  namespace fs = std::filesystem;
  const std::string path = uid_path();
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream(path + ".tmp") << uid << "\n";
  fs::rename(path + ".tmp", path, ec);
  if (ec) return make_error(Errc::kIo, "cannot write " + path + ": " + ec.message());
  return Ok{};
}

void Daemon::detach_resources() {
  const ClusterState state = store_->state();
  const auto self = state.nodes.find(self_.name);
  if (state.directives.maintenance ||
      (self != state.nodes.end() && self->second.mode == NodeMode::kMaintenance)) {
    spdlog::info("shutdown: maintenance leaves this node's resources running");
    return;
  }
  auto r = resource_ops_->set_node_mode(self_.name, "maintenance");
  if (!r) {
    spdlog::error(
        "shutdown: cannot put node {} in maintenance ({}); its resources are stopped as usual",
        self_.name, r.error().message);
    return;
  }
  spdlog::warn(
      "shutdown: node {} is now in maintenance, so that its resources keep running without "
      "bulwarkd; once it is back, resume management with: bulwark node online {}",
      self_.name, self_.name);
}

std::vector<NodeRecord> Daemon::cluster_nodes(const ClusterState& state) const {
  if (state.schema_version == 0) return founding_nodes();
  std::vector<NodeRecord> out;
  for (const auto& [name, n] : state.nodes) out.push_back(n);
  return out;
}

std::vector<std::string> Daemon::etcd_endpoints(const ClusterState& state) const {
  if (config_.store.mode == StoreMode::kExternal) return config_.store.endpoints;
  // Our own member first: it is the closest, and when it is cut off the
  // others take over.
  std::vector<std::string> out = {client_url(self_.address, self_.ports.etcd_client)};
  for (const auto& n : cluster_nodes(state)) {
    if (n.name != self_.name) out.push_back(client_url(n.address, n.ports.etcd_client));
  }
  return out;
}

std::vector<PeerEndpoint> Daemon::members_from(const ClusterState& state) const {
  std::vector<PeerEndpoint> out;
  for (const auto& n : cluster_nodes(state)) out.push_back({n.name, n.address, n.ports.heartbeat});
  return out;
}

void Daemon::health_loop(const std::stop_token& stop) {
  int64_t next_ms = 0;
  std::map<uint64_t, std::string> member_names;  // etcd member id -> name
  while (!stop.stop_requested()) {
    if (const int64_t now = clock_.mono_ms(); now < next_ms) {
      // Short naps keep shutdown prompt without waking often.
      clock_.sleep_ms(std::min<int64_t>(next_ms - now, 200));
      continue;
    }
    next_ms = clock_.mono_ms() + kHealthIntervalMs;
    EtcdHealth h;
    const auto endpoints = etcd_->endpoints();
    for (const auto& ep : endpoints) {
      auto st = etcd_->status(ep);
      if (!st) {
        h.error = st.error().message;
        continue;
      }
      h.endpoint = ep;
      h.error.clear();
      h.version = st->version;
      h.raft_term = st->raft_term;
      h.healthy = st->leader != 0;
      if (st->leader == 0) h.error = ep + " has no leader";
      // Member names change only with membership: look them up when an
      // unknown leader appears, not every second.
      if (st->leader != 0 && !member_names.count(st->leader)) {
        if (auto members = etcd_->member_list()) {
          member_names.clear();
          for (const auto& m : *members) member_names[m.id] = m.name;
        }
      }
      if (auto it = member_names.find(st->leader); it != member_names.end()) h.leader = it->second;
      break;
    }
    if (h.healthy) {
      // Our own member answers with a leader: watch from it rather than
      // from a peer's, whose host may vanish without a reset.
      if (embedded_ && h.endpoint == endpoints.front()) store_->prefer_first_endpoint();
      if (auto fresh = store_->confirm_fresh(); !fresh) h.error = fresh.error().message;
    }
    std::lock_guard lock(health_mu_);
    health_ = h;
  }
}

int Daemon::run() {
  started_mono_ms_ = clock_.mono_ms();
  const sigset_t signals = take_signals();
  // A start that fails leaves what runs to the next daemon's adoption.
  if (const int rc = start(); rc != kExitOk) return rc;
  health_thread_ = std::jthread([this](const std::stop_token& stop) { health_loop(stop); });
  spdlog::info("bulwarkd {} of cluster {} running: API https://{}:{}, heartbeats udp {}",
               self_.name, config_.cluster_name, url_host(self_.address), self_.ports.api,
               self_.ports.heartbeat);
  int exit_code = kExitOk;
  while (!control_tick(signals, exit_code)) {
  }
  // Resources stop while the node still holds its lease and its store
  // connection, so that their final state is published. The parts stop
  // after, as the daemon is destroyed.
  agent_->shutdown(kAgentShutdownMs);
  return exit_code;
}

sigset_t Daemon::take_signals() {
  // Signals are taken synchronously by the control loop; block them before
  // any thread starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  // SIGCHLD goes to the agent's signalfd: blocked everywhere, waited for
  // by no one else.
  sigset_t blocked = signals;
  sigaddset(&blocked, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  // Orphans of resources (daemonised grandchildren) become ours, and are
  // reaped the moment they exit.
  if (auto st = become_subreaper(); !st) spdlog::warn("{}", st.error().message);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

int Daemon::start() {
  EtcdClientOptions eo;
  eo.endpoints = etcd_endpoints(ClusterState{});
  eo.request_timeout_ms = config_.store.request_timeout_ms;
  eo.clock = &clock_;
  eo.ca_file = config_.store.ca_file.empty() ? config_.ca_file() : config_.store.ca_file;
  eo.cert_file =
      config_.store.cert_file.empty() ? config_.cert_file(self_.name) : config_.store.cert_file;
  eo.key_file =
      config_.store.key_file.empty() ? config_.key_file(self_.name) : config_.store.key_file;
  etcd_ = std::make_unique<EtcdClient>(eo);

  {
    // Before anything starts: is this node (still) a member, and is its
    // data its own? The other members answer (embedded mode: not our own,
    // which may hold stale data); if none does, the store is asked again
    // once it runs (the control loop).
    EtcdClientOptions po = eo;
    if (config_.store.mode == StoreMode::kEmbedded)
      po.endpoints.erase(po.endpoints.begin());  // ask the others, not ourselves
    po.request_timeout_ms = 1000;
    EtcdClient probe(po);
    if (!po.endpoints.empty()) {
      if (auto reg = read_registration(probe, Schema(config_.store.prefix), self_.name)) {
        if (auto st = check_registration(reg->initialised, reg->node); !st) {
          spdlog::error("{}", st.error().message);
          return st.error().code == Errc::kInvalid ? kExitBadInput : kExitFailure;
        }
        registration_checked_ = reg->initialised;
      }
    }
    // A founding node's first start on an empty data dir: its uid is
    // known already, and recorded before its etcd member has any data.
    std::string mine;
    std::ifstream(uid_path()) >> mine;
    const bool fresh = !std::filesystem::exists(config_.node_data_dir(self_.name) + "/etcd/member");
    if (mine.empty() && fresh && !registration_checked_) {
      if (auto st = write_uid(founding_node_uid(secret_, self_.name)); !st) {
        spdlog::error("{}", st.error().message);
        return kExitFailure;
      }
    }
  }

  if (config_.store.mode == StoreMode::kEmbedded) {
    embedded_ = std::make_unique<EmbeddedEtcd>(clock_, config_, self_);
    EtcdClientOptions po = eo;
    po.endpoints.erase(po.endpoints.begin());  // ask the others, not ourselves
    po.request_timeout_ms = 1000;
    EtcdClient probe(po);
    if (auto st = embedded_->prepare(probe); !st) {
      spdlog::error("{}", st.error().message);
      return st.error().code == Errc::kInvalid ? kExitBadInput : kExitFailure;
    }
    if (auto st = embedded_->start(); !st) {
      spdlog::error("etcd: {}", st.error().message);
      return kExitFailure;
    }
  }

  auto socket = UdpSocket::bind(self_.address, self_.ports.heartbeat);
  if (!socket) {
    spdlog::error("{}", socket.error().message);
    return kExitFailure;
  }
  auto membership =
      std::make_unique<Membership>(clock_, config_.cluster_name, self_.name, secret_,
                                   config_.heartbeat_ms, config_.lease_ms, random_u64());
  membership_ =
      std::make_unique<MembershipService>(clock_, std::move(membership), std::move(*socket));
  members_ = members_from(ClusterState{});
  membership_->set_members(members_);
  membership_->start();

  // Two thirds of an etcd election: a claim sent to a member whose leader
  // just died is dropped, and is best retried once a new leader can exist.
  const int coordinator_timeout_ms = std::max(
      150, std::min(config_.store.request_timeout_ms, config_.store.etcd_election_ms * 2 / 3));
  store_ =
      std::make_unique<Store>(clock_, *etcd_, Schema(config_.store.prefix), agent_class_syntaxes(),
                              config_.cluster_name, coordinator_timeout_ms);
  store_->start();

  CoordinatorOptions co;
  co.lease_margin_ms = 2 * config_.heartbeat_ms;
  co.lease_ms = config_.lease_ms;
  co.fencing = config_.fencing;
  co.watchdog_ms = config_.watchdog.device.empty() ? 0 : config_.watchdog.timeout_ms;
  for (const auto& n : config_.nodes) {
    if (!n.fence.empty()) co.fence_params[n.name] = n.fence;
  }
  co.started_mono_ms = started_mono_ms_;
  co.settle_ms = config_.lease_ms + config_.heartbeat_ms;
  coordinator_ = std::make_unique<Coordinator>(clock_, store_->writes(), *store_, fence_launcher_,
                                               self_.name, founding_nodes(), co);

  AgentServiceOptions ago;
  ago.agent.node = self_.name;
  ago.agent.node_address = self_.address;
  // Exclusive resources stop when the lease has this little left, so that
  // they are gone before it can have expired anywhere.
  ago.agent.lease_guard_ms = config_.lease_ms / 3;
  ago.runner.runtime_dir = runtime_dir(config_.node_data_dir(self_.name) + "/run");
  ago.runner.log_dir = config_.node_data_dir(self_.name) + "/logs";
  {
    // The agent classes this node runs. bulwark-proxy is installed beside
    // bulwarkd.
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::string proxy_binary =
        ec ? "/usr/bin/bulwark-proxy" : (self.parent_path() / "bulwark-proxy").string();
    ago.runner.classes = {{AgentClass::kExec, exec_class()},
                          {AgentClass::kOcf, ocf_class(config_.ocf_root)},
                          {AgentClass::kSystemd, systemd_class()},
                          {AgentClass::kVip, vip_class()},
                          {AgentClass::kProxy, proxy_class(proxy_binary)}};
  }
  ago.watchdog = config_.watchdog;
  // A dev node's marker goes on to its resources: `bulwark dev kill` finds
  // them by it, also once a later daemon of the node has adopted them.
  for (auto& kv : current_environment({})) {
    if (kv.rfind(std::string(kDevNodeVariable) + "=", 0) == 0)
      ago.runner.inherited_env.push_back(kv);
  }
  agent_ = std::make_unique<AgentService>(clock_, *store_, *membership_, ago);
  if (auto st = agent_->start(); !st) {
    spdlog::error("agent: {}", st.error().message);
    return kExitFailure;
  }

  resource_ops_ = std::make_unique<ResourceOperations>(
      clock_, *store_, [this] { return require_quorum(); },
      [this](Result<int64_t> r) { return committed(std::move(r)); },
      [this] { return membership_->view(); }, config_.ocf_root, self_.name, self_.address);

  ApiServerOptions ao;
  ao.address = self_.address;
  ao.port = self_.ports.api;
  ao.cert_file = config_.cert_file(self_.name);
  ao.key_file = config_.key_file(self_.name);
  ao.admin_token = token_;
  api_ = std::make_unique<ApiServer>(ao, *this);
  if (auto st = api_->start(); !st) {
    spdlog::error("{}", st.error().message);
    return kExitFailure;
  }
  return kExitOk;
}

bool Daemon::control_tick(const sigset_t& signals, int& exit_code) {
  // The coordinator notices a lost holder at most a tick after its lease
  // ran out.
  timespec tick{0, Coordinator::kTickMs * 1000000L};
  siginfo_t info;
  const int sig = sigtimedwait(&signals, &info, &tick);
  if (sig == SIGTERM || sig == SIGINT) {
    spdlog::info("received {}; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    if (options_.detach_resources) detach_resources();
    return true;
  }
  if (embedded_) embedded_->supervise();
  const ClusterState state = store_->state();
  if (state.schema_version > 0) {
    follow_members(state);
    if (auto st = still_registered(state); !st) {
      // Removed, or not this node's data: its etcd member must not rejoin.
      if (st.error().code == Errc::kNotFound) {
        spdlog::warn("{}", st.error().message);
      } else {
        spdlog::error("{}", st.error().message);
      }
      exit_code = kExitBadInput;
      if (embedded_) embedded_->abandon();
      return true;
    }
  }
  // Peers tell each other whether they reach the coordinator.
  membership_->set_watched(Coordinator::watched(state));
  const MembershipView view = membership_->view();
  if (embedded_ && state.schema_version > 0) {
    // A peer our heartbeats do not reach is likely gone: its etcd member
    // is asked last, and never waited on while another can answer.
    std::set<std::string> unreachable;
    for (const auto& n : cluster_nodes(state)) {
      const MemberStatus* m = view.find(n.name);
      if (m != nullptr && !m->self && !m->online)
        unreachable.insert(client_url(n.address, n.ports.etcd_client));
    }
    if (etcd_->set_unreachable(unreachable))
      spdlog::info("store: the watch left the etcd member of a node that does not answer");
  }
  coordinator_->tick(state, view);
  return false;
}

void Daemon::follow_members(const ClusterState& state) {
  const auto next = members_from(state);
  const auto same = [](const PeerEndpoint& a, const PeerEndpoint& b) {
    return a.name == b.name && a.address == b.address && a.port == b.port;
  };
  if (std::equal(next.begin(), next.end(), members_.begin(), members_.end(), same)) return;
  members_ = next;
  membership_->set_members(members_);
  etcd_->set_endpoints(etcd_endpoints(state));
}

Status Daemon::still_registered(const ClusterState& state) {
  if (state.node_keys.count(self_.name)) {
    if (!seen_in_store_ && !registration_checked_) {
      // Nobody answered before start: checked now, from the store.
      auto n = state.nodes.find(self_.name);
      const std::optional<NodeRecord> rec =
          n == state.nodes.end() ? std::nullopt : std::optional<NodeRecord>(n->second);
      if (auto st = check_registration(true, rec); !st) return st;
      registration_checked_ = true;
    }
    seen_in_store_ = true;
    return Ok{};
  }
  if (seen_in_store_)
    return make_error(Errc::kNotFound,
                      "this node (" + self_.name + ") was removed from the cluster; stopping");
  // The cluster runs and has no such node: never a member, or removed
  // while this daemon was down.
  if (state.loaded && !registration_checked_) return check_registration(true, std::nullopt);
  return Ok{};
}

Status Daemon::require_quorum() {
  const MembershipView v = membership_->view();
  if (v.holds_lease) return Ok{};
  std::string reach;
  for (const auto& r : v.reachable) reach += (reach.empty() ? "" : ", ") + r;
  return make_error(Errc::kNoQuorum, "no quorum: node " + self_.name + " reaches " +
                                         (reach.empty() ? std::string("no other node") : reach) +
                                         " (needs " + std::to_string(v.majority) + " of " +
                                         std::to_string(v.members.size()) +
                                         " nodes including itself); nothing was committed");
}

Result<int64_t> Daemon::committed(Result<int64_t> r) {
  // Read-your-writes: answer once this node's cache shows the write too.
  if (r) store_->wait_for_revision(*r, 2000);
  return r;
}

Result<int64_t> Daemon::add_node(const NodeAddRequest& req) {
  if (!valid_node_name(req.name))
    return make_error(Errc::kInvalid,
                      "node name '" + req.name + "' must be 1-63 characters of a-z 0-9 - _ .");
  if (!valid_ip_address(req.address))
    return make_error(Errc::kInvalid,
                      "address '" + req.address + "' is not an IPv4 or IPv6 address");
  for (const auto& [k, v] : req.attributes) {
    if (!valid_attribute_key(k))
      return make_error(Errc::kInvalid, "attribute key '" + k + "' is not valid");
  }
  if (auto st = require_quorum(); !st) return st.error();
  std::lock_guard lock(write_mu_);
  // The lock may have been held for a while: the lease is checked again
  // before anything is written.
  if (auto st = require_quorum(); !st) return st.error();
  {
    const MembershipView v = membership_->view();
    if (auto st = add_keeps_majority(req.name, static_cast<int>(v.members.size()),
                                     static_cast<int>(v.reachable.size()) + 1,
                                     !store_->state().nodes.count(req.name));
        !st)
      return st.error();
  }
  NodeRecord rec;
  rec.name = req.name;
  rec.address = req.address;
  rec.attributes = req.attributes;
  rec.ports = config_.default_ports;
  rec.uid = new_node_uid();
  if (const NodeConfig* c = config_.find_node(req.name)) {
    if (c->address == req.address) rec.ports = c->ports;
  }
  const ClusterState state = store_->state();
  for (const auto& [name, n] : state.nodes) {
    if (name != req.name && n.address == req.address && n.ports.api == rec.ports.api)
      return make_error(Errc::kConflict, "node '" + name + "' already uses address " + req.address);
  }
  // Idempotent: a second `node add` of the same node finishes what a first,
  // interrupted one started.
  auto existing = state.nodes.find(req.name);
  int64_t revision = 0;
  if (existing != state.nodes.end()) {
    if (existing->second.address != req.address)
      return make_error(Errc::kConflict, "node '" + req.name + "' already exists with address " +
                                             existing->second.address);
    revision = state.revision;
  } else {
    if (auto st = require_quorum(); !st) return st.error();
    auto created = store_->create_node(rec);
    if (!created) return created.error();
    revision = *created;
  }
  if (config_.store.mode == StoreMode::kEmbedded) {
    const std::string url = peer_url(rec.address, rec.ports.etcd_peer);
    auto st = retry_member_change(clock_, kMemberChangeRetryMs,
                                  [&] { return ensure_etcd_member(*etcd_, req.name, url); });
    if (!st) {
      // Undo the node record so that nothing is half-applied.
      if (existing == state.nodes.end()) {
        if (auto undo = store_->delete_node(req.name); !undo)
          return make_error(st.error().code,
                            st.error().message + "; the node record could not be removed again (" +
                                undo.error().message + "): run bulwark node remove " + req.name);
      }
      return st.error();
    }
  }
  spdlog::info("api: node {} ({}) added", req.name, req.address);
  return committed(revision);
}

Result<int64_t> Daemon::remove_node(const std::string& name) {
  if (auto st = require_quorum(); !st) return st.error();
  std::lock_guard lock(write_mu_);
  if (auto st = require_quorum(); !st) return st.error();
  const ClusterState state = store_->state();
  const auto it = state.nodes.find(name);
  if (it == state.nodes.end()) return make_error(Errc::kNotFound, "no node named '" + name + "'");
  if (state.nodes.size() == 1) return make_error(Errc::kInvalid, "cannot remove the last node");
  // Once removed, a node can be neither fenced nor proven gone: what it may
  // still run exclusively must have stopped (or been voided) first.
  if (auto st = state.statuses.find(name); st != state.statuses.end()) {
    const std::string running = exclusive_still_running(st->second, state.resource_config.get());
    if (!running.empty())
      return make_error(Errc::kInvalid,
                        "node " + name + " may still run " + running +
                            ": move them off first (bulwark node standby " + name +
                            "), or wait until it is fenced or its lease has expired");
  }
  if (config_.store.mode == StoreMode::kEmbedded) {
    const std::string url = peer_url(it->second.address, it->second.ports.etcd_peer);
    auto st = retry_member_change(clock_, kMemberChangeRetryMs,
                                  [&] { return remove_etcd_member(*etcd_, name, url); });
    if (!st) return st.error();
  }
  // The etcd change may have taken a while: check the lease again.
  if (auto st = require_quorum(); !st) return st.error();
  auto r = store_->delete_node(name);
  if (!r) return r.error();
  spdlog::info("api: node {} removed", name);
  return committed(r);
}

Result<int64_t> Daemon::set_node_attributes(const std::string& name,
                                            const std::map<std::string, std::string>& set,
                                            const std::vector<std::string>& unset) {
  for (const auto& [k, v] : set) {
    if (!valid_attribute_key(k))
      return make_error(Errc::kInvalid, "attribute key '" + k + "' is not valid");
    if (v.size() > 256)
      return make_error(Errc::kInvalid, "attribute '" + k + "' is longer than 256 bytes");
  }
  if (auto st = require_quorum(); !st) return st.error();
  return committed(store_->update_node(name, [&](NodeRecord& n) -> Status {
    // Runs right before each attempt's transaction: no lease, no write.
    if (auto st = require_quorum(); !st) return st;
    for (const auto& [k, v] : set) n.attributes[k] = v;
    for (const auto& k : unset) n.attributes.erase(k);
    return Ok{};
  }));
}

json Daemon::status() {
  const MembershipView view = membership_->view();
  const ClusterState state = store_->state();
  const CacheInfo cache = store_->cache_info();
  const CoordinatorStats cs = coordinator_->stats();
  EtcdHealth health;
  {
    std::lock_guard lock(health_mu_);
    health = health_;
  }
  json j;
  j["cluster"] = config_.cluster_name;
  j["node"] = self_.name;
  if (state.coordinator) {
    j["coordinator"] = state.coordinator->node;
    j["epoch"] = state.coordinator->epoch;
    j["coordinator_since_wall_ms"] = state.coordinator->acquired_wall_ms;
  } else {
    j["coordinator"] = nullptr;
    j["epoch"] = 0;
    j["coordinator_since_wall_ms"] = nullptr;
  }
  j["quorate"] = view.holds_lease;
  j["lease"] = {{"held", view.holds_lease},
                {"remaining_ms", view.lease_remaining_ms},
                {"majority", view.majority},
                {"members", view.members.size()},
                {"reachable", view.reachable},
                {"lease_ms", config_.lease_ms},
                {"heartbeat_ms", config_.heartbeat_ms}};
  j["etcd"] = {{"mode", config_.store.mode == StoreMode::kEmbedded ? "embedded" : "external"},
               {"healthy", health.healthy},
               {"endpoint", health.endpoint},
               {"leader", health.leader},
               {"raft_term", health.raft_term},
               {"version", health.version},
               {"error", health.error.empty() ? json(nullptr) : json(health.error)}};
  if (embedded_) {
    j["etcd"]["member_pid"] = embedded_->pid();
    j["etcd"]["member_restarts"] = embedded_->restarts();
  }
  j["store"] = {{"loaded", cache.loaded},
                {"initialized", state.schema_version > 0},
                {"schema_version", state.schema_version},
                {"watching", cache.watching},
                {"revision", cache.revision},
                {"confirmed_ago_ms", cache.confirmed_ago_ms},
                {"reloads", cache.reloads},
                {"errors", state.errors}};
  j["role"] = {{"coordinating", cs.acting},
               {"epoch", cs.epoch},
               {"claims", cs.claims},
               {"writes", cs.writes},
               {"refused_writes", cs.refused_writes},
               {"placements", cs.placements},
               {"waiting_for", cs.waiting_for.empty() ? json(nullptr) : json(cs.waiting_for)}};
  j["heartbeat"] = {{"rejected_datagrams", view.rejected_datagrams}};
  if (agent_) {
    const AgentService::Info a = agent_->info();
    const auto age = [](int64_t ms) { return ms < 0 ? json(nullptr) : json(ms); };
    j["agent"] = {{"probed", a.probed},
                  {"write_in_flight", a.write_in_flight},
                  {"status_written_ago_ms", age(a.published_ago_ms)},
                  {"loop_ago_ms", age(a.loop_ago_ms)},
                  {"write_error", a.write_error.empty() ? json(nullptr) : json(a.write_error)}};
  }
  json nodes = json::array();
  for (const auto& n : cluster_nodes(state)) {
    const MemberStatus* m = view.find(n.name);
    nodes.push_back({{"name", n.name},
                     {"address", n.address},
                     {"online", m != nullptr && m->online},
                     {"mode", node_mode_name(n.mode)},
                     {"attributes", n.attributes},
                     {"self", n.name == self_.name},
                     {"coordinator", state.coordinator && state.coordinator->node == n.name},
                     {"last_contact_ms", m ? json(m->last_contact_ago_ms) : json(nullptr)},
                     {"rtt_ms", m && m->rtt_ms >= 0 ? json(m->rtt_ms) : json(nullptr)}});
  }
  j["nodes"] = nodes;
  return j;
}

}  // namespace

int run_daemon(const std::string& config_path, const std::string& node_name,
               const DaemonOptions& options) {
  auto config = load_config(config_path);
  if (!config) {
    spdlog::error("{}", config.error().message);
    return kExitBadInput;
  }
  const NodeConfig* self = config->find_node(node_name);
  if (!self) {
    std::string names;
    for (const auto& n : config->nodes) names += (names.empty() ? "" : ", ") + n.name;
    spdlog::error("{}: node '{}' is not in the configuration (nodes: {})", config->path, node_name,
                  names);
    return kExitBadInput;
  }
  auto secret = read_secret_file(config->secret_file);
  if (!secret) {
    spdlog::error("cluster secret: {}", secret.error().message);
    return kExitBadInput;
  }
  auto token = read_secret_file(config->token_file);
  if (!token) {
    spdlog::error("admin token: {}", token.error().message);
    return kExitBadInput;
  }
  if (!std::filesystem::exists(config->ca_file())) {
    spdlog::error("{}: missing CA certificate", config->ca_file());
    return kExitBadInput;
  }
  if (auto st = check_certificate_files(config->cert_file(node_name), config->key_file(node_name));
      !st) {
    spdlog::error("{}", st.error().message);
    return kExitBadInput;
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [" + node_name + "] %v");
  int rc = kExitOk;
  {
    Daemon daemon(*config, *self, *secret, *token, options);
    rc = daemon.run();
  }  // every part it started stops here
  spdlog::info("bulwarkd {} stopped (exit {})", node_name, rc);
  return rc;
}

}  // namespace bulwark
