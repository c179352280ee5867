// The built-in `proxy` agent class's cluster side. ProxyRunner runs each
// `proxy` resource's bulwark-proxy like an exec resource, on a
// configuration file in the runtime directory; ProxyController keeps that
// file true to the cluster and has the proxy reload it through its control
// socket (a reload keeps listening sockets, servers' health and counters):
//   - a backend with `servers_from: {resource, port}` gets one server per
//     node where the resource is started (NODE_ADDRESS:port), named after
//     the node; an instance that announced its stop (node_agent.h) or is
//     stopping is kept with weight 0 (no new traffic) until it is gone, and
//     the announced stop is acknowledged once no request is in flight to it
//     here (or after the resource's notify_timeout_ms), so a planned move
//     loses no request;
//   - a frontend that listens on a loopback VIP of the file (127.0.0.0/8,
//     `bulwark dev` clusters, where every node shares the host's addresses)
//     is written only on the node that holds the VIP, so only the holder
//     serves it; a frontend on any other VIP of the file gets `freebind`, so
//     every node listens and the kernel delivers where the address is.
// Reloads go through a worker thread: the agent's loop never waits for a
// proxy that does not answer.
//
// Thread-safety: sync() on the agent loop's thread only.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/class_runner.h"
#include "core/env.h"
#include "core/resource_config.h"
#include "store/schema.h"

namespace bulwark {

std::string proxy_config_path(const std::string& runtime_dir, const std::string& resource);
std::string proxy_socket_path(const std::string& runtime_dir, const std::string& resource);

// One server of a servers_from backend.
struct DerivedServer {
  std::string name;     // the node
  std::string address;  // NODE_ADDRESS:PORT
  int weight = 1;       // 0 while its instance stops
  bool operator==(const DerivedServer&) const = default;
};

// What a proxy resource's configuration depends on in the cluster.
struct ProxyInputs {
  std::map<std::string, std::vector<DerivedServer>> servers;  // by backend
  std::set<std::string> held_loopback_vips;                   // addresses held here
  std::set<ServerDrain> drains;
};

// The file a proxy resource runs on: its section, the control socket, the
// servers of servers_from backends and the frontends this node may listen on.
Result<std::string> render_cluster_proxy_config(const ResourceSpec& proxy,
                                                const ResourceConfig& config,
                                                const std::string& runtime_dir,
                                                const ProxyInputs& inputs);

// The servers and VIPs `proxy` depends on, from every node's status (this
// node's own record is `local`, fresher than the store's).
ProxyInputs proxy_inputs(const ResourceSpec& proxy, const ResourceConfig& config,
                         const ClusterState& state, const std::string& self,
                         const NodeStatusRecord& local);

class ProxyController {
 public:
  ProxyController(const Clock& clock, std::string runtime_dir);
  ~ProxyController();
  ProxyController(const ProxyController&) = delete;
  ProxyController& operator=(const ProxyController&) = delete;

  // Brings every proxy running here up to date. Returns at once when the
  // store state and this node's status are as at the last call and nothing
  // was left to do.
  void sync(const ClusterState& state, const std::string& self, const NodeStatusRecord& local);
  // Announced stops every proxy here has drained since the last call: for
  // NodeAgent::acknowledge.
  std::vector<ServerDrain> take_drained();

 private:
  struct Job {
    bool show = false;  // false: write `text` and reload; true: ask for stats
    std::string resource;
    std::string text;
  };
  struct JobResult {
    Job job;
    std::optional<std::string> error;
    nlohmann::json answer;
  };
  // A drain under way: the proxies here still sending the server requests,
  // and those that showed nothing in flight any more (with the server's
  // weight at 0, nothing new comes: they are done with it).
  struct DrainWait {
    int64_t deadline_ms = 0;
    std::set<std::string> proxies;
    std::set<std::string> idle;
    bool acknowledged = false;
  };
  void run_worker();
  void on_result(const JobResult& r);
  // `current`: the proxy runs the configuration that `inputs` make.
  void follow_drains(const std::string& proxy, const ProxyInputs& inputs,
                     const ResourceConfig& config, bool current, std::vector<Job>& jobs);

  const Clock& clock_;
  std::string runtime_dir_;
  // Loop thread: what each proxy was last told successfully, and when a
  // failed reload may be tried again.
  std::map<std::string, std::string> applied_;
  std::map<std::string, int64_t> retry_at_ms_;
  std::set<std::string> in_flight_;
  // The inputs of the last full sync, and whether it left nothing to do.
  std::string inputs_key_;
  bool settled_ = false;

  std::map<ServerDrain, DrainWait> drains_;
  std::set<std::string> showing_;  // proxies with a stats request in flight
  std::vector<ServerDrain> drained_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Job> jobs_;        // guarded by mu_
  std::vector<JobResult> done_;  // guarded by mu_
  bool stop_ = false;            // guarded by mu_
  std::thread worker_;
};

}  // namespace bulwark
