// The live state of backends and their servers, shared by every worker, the
// health checker, the control socket and the stats endpoint.
//
// Threading: a Backend's server list, weights, drain flags and balancer state
// are guarded by its mutex; a server's health (`up`) and in-flight count are
// atomics so that workers and the checker can read them without it. Servers
// are held by shared_ptr: a removed server lives on until the last
// connection using it ends.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "proxy/balancer.h"
#include "proxy/proxy_config.h"
#include "proxy/stats_counters.h"

namespace bulwark::proxy {

class Server {
 public:
  Server(ServerConfig config, int workers, bool starts_up);

  const std::string& name() const { return config_.name; }
  const SocketAddress& address() const { return config_.address; }
  uint64_t key() const { return key_; }

  bool up() const { return up_.load(std::memory_order_acquire); }
  // Removed from its backend (by a reload or `ctl remove-server`): takes no
  // new traffic, and its idle connections are closed.
  bool removed() const { return removed_.load(std::memory_order_acquire); }
  int active() const { return active_.load(std::memory_order_relaxed); }
  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }

  void note_traffic_success() { consecutive_errors_.store(0, std::memory_order_relaxed); }
  // Set when traffic failed `error_limit` times in a row on a checked
  // server: the health checker checks it at once and takes it down on the
  // first failure.
  bool take_check_request() { return check_requested_.exchange(false, std::memory_order_acq_rel); }

  // Set by the health checker (and by passive failures).
  void set_up(bool up) { up_.store(up, std::memory_order_release); }

 private:
  friend class Backend;
  ServerConfig config_;  // weight, backup, maxconn: under the backend's mutex
  uint64_t key_;
  bool draining_ = false;             // under the backend's mutex
  std::atomic<bool> removed_{false};  // written under the backend's mutex
  std::atomic<bool> up_;
  std::atomic<int> active_{0};
  std::atomic<int> consecutive_errors_{0};
  std::atomic<bool> check_requested_{false};
  Counters counters_;
};

// What the stats endpoint and `ctl show` print about a server.
struct ServerView {
  std::shared_ptr<Server> server;
  ServerConfig config;
  bool draining = false;
};

class Backend {
 public:
  Backend(const BackendConfig& config, int workers);

  const std::string& name() const { return name_; }
  std::shared_ptr<const BackendConfig> settings() const;
  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }

  struct Choice {
    std::shared_ptr<Server> server;  // set when outcome is kPicked
    PickOutcome outcome = PickOutcome::kNone;
    std::shared_ptr<const BackendConfig> settings;  // in force for this pick
  };
  // Picks a server for one request (http) or connection (tcp) and counts it
  // as active on it; `tried` servers are avoided while others remain.
  Choice pick(uint64_t client_hash, std::span<const Server* const> tried);
  // Ends what pick() started.
  void release(Server& server);

  // Passive health: a worker reports a failure of real traffic (a failed
  // connect, a reset, a timeout). After `error_limit` in a row, a checked
  // server is checked at once; an unchecked one is marked down, unless no
  // other server could take its traffic: then trying it beats refusing.
  enum class Verdict { kCounted, kCheckRequested, kMarkedDown };
  Verdict note_traffic_failure(Server& server);

  // Requests waiting for a slot, over all workers; bounded by queue_max.
  bool try_enqueue();
  void dequeued() { queued_.fetch_sub(1, std::memory_order_relaxed); }
  int queued() const { return queued_.load(std::memory_order_relaxed); }
  // Called (from any thread) when a slot frees while requests are queued.
  void set_slot_waker(std::function<void()> waker);

  // Live changes; each is atomic with respect to pick().
  Status add_server(const ServerConfig& server);
  Status remove_server(const std::string& name);
  Status set_draining(const std::string& name, bool draining);
  Status set_weight(const std::string& name, int weight);
  // A reload: new settings, servers matched by name (kept, with their
  // counters and health, when their address is unchanged).
  void apply(const BackendConfig& config);

  std::vector<ServerView> servers() const;
  std::shared_ptr<Server> find(const std::string& name) const;

 private:
  std::shared_ptr<Server> make_server(const ServerConfig& config) const;
  std::vector<std::shared_ptr<Server>>::iterator find_locked(const std::string& name);

  const std::string name_;
  const int workers_;
  mutable std::mutex mu_;
  std::shared_ptr<const BackendConfig> settings_;  // servers list inside is not used
  std::vector<std::shared_ptr<Server>> servers_;
  Balancer balancer_;
  std::vector<Candidate> scratch_;
  std::atomic<int> queued_{0};
  std::function<void()> slot_waker_;
  Counters counters_;
};

}  // namespace bulwark::proxy
