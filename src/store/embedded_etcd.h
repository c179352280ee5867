// Runs this node's etcd member (Debian's etcd-server) as a supervised child
// of bulwarkd: flags generated from bulwark.yaml (URLs, mutual TLS, data dir,
// timings, pre-vote), restarted with backoff when it dies, stopped on
// shutdown. Debian's own etcd.service is never used.
//
// Thread-safety: owned and called by the daemon's control thread only.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/env.h"
#include "store/etcd_client.h"

namespace bulwark {

std::string url_host(const std::string& address);  // brackets IPv6 literals
std::string peer_url(const std::string& address, int port);
std::string client_url(const std::string& address, int port);

class EmbeddedEtcd {
 public:
  EmbeddedEtcd(const Clock& clock, const Config& config, const NodeConfig& self);
  ~EmbeddedEtcd();

  // Decides how to start: an existing data dir restarts as it is; an empty
  // one joins the running cluster if this node was added to it (`bulwark node
  // add`), or bootstraps the configured founding nodes if no member of the
  // cluster answers. Fails (kInvalid) if a running cluster does not list this
  // node: it must be added first, or (with data) it was removed.
  Status prepare(EtcdClient& probe);
  Status start();
  // Restarts the member if it died (with backoff); call often.
  void supervise();
  void stop();
  // Stops supervising for good (this node was removed from the cluster).
  void abandon();

  // Safe from any thread (the API reports them).
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int restarts() const { return restarts_; }
  std::vector<std::string> command_line() const;
  std::string data_dir() const;

 private:
  const Clock& clock_;
  const Config& config_;
  NodeConfig self_;
  bool join_existing_ = false;
  std::string initial_cluster_;
  std::atomic<pid_t> pid_{-1};
  std::atomic<int> restarts_{0};
  int64_t started_mono_ms_ = 0;
  int64_t next_start_mono_ms_ = 0;
  int64_t backoff_ms_ = 100;
  bool abandoned_ = false;
};

}  // namespace bulwark
