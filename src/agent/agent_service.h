// Runs the node agent in bulwarkd: one thread with an event loop that owns
// the NodeAgent and the ProcessRunner, feeds the agent the store's view and
// the node's lease, publishes the node's status record and makes its claims.
// It also reaps orphans: bulwarkd is a child subreaper, so a resource's
// daemonised grandchildren are reaped here the moment they exit (SIGCHLD
// through a signalfd) instead of lingering as zombies until PID 1 gets to
// them.
//
// Thread-safety: start/shutdown from the daemon's main thread; everything
// else runs on the agent thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/node_agent.h"
#include "agent/process_runner.h"
#include "agent/proxy_controller.h"
#include "membership/membership_service.h"
#include "store/store.h"
#include "sys/event_loop.h"
#include "sys/watchdog.h"

namespace bulwark {

struct AgentServiceOptions {
  AgentOptions agent;
  ProcessRunnerOptions runner;
  WatchdogConfig watchdog;  // no device: none
};

class AgentService {
 public:
  AgentService(const Clock& clock, Store& store, const MembershipService& membership,
               AgentServiceOptions options);
  ~AgentService();

  // Opens the watchdog (if configured) and starts the thread.
  Status start();
  // Stops every local resource (in reverse order) and ends the thread.
  // Returns once done or after `timeout_ms`, whichever is first.
  void shutdown(int timeout_ms);

  // For `bulwark status`: how the agent is doing. Any thread.
  struct Info {
    bool probed = false;            // every resource probed since the daemon started
    bool write_in_flight = false;   // a status write or claim waits for etcd
    int64_t published_ago_ms = -1;  // since the newest status write committed; -1: none
    int64_t loop_ago_ms = -1;       // since the agent's loop last turned
    std::string write_error;        // of the newest failed write, if the last one failed
  };
  Info info() const;

 private:
  // A write of this node's status record; with `claim`, conditioned on the
  // placement revision.
  struct Write {
    NodeStatusRecord record;
    std::optional<int64_t> claim;
    int64_t record_revision = 0;  // the version of the record it replaces
  };
  void run();
  void run_writer();
  AgentView build_view(const ClusterState& state) const;
  void publish(const ClusterState& state);
  void claim(int64_t placement_revision);
  void submit(Write write);
  void on_written(const Write& write, const Result<StoreWrites::StatusWrite>& result);
  void finish_shutdown();
  void reap();
  void feed_watchdog(const AgentView& view);
  Status arm_watchdog();
  // The record with this daemon's membership incarnation.
  NodeStatusRecord stamped(NodeStatusRecord rec) const;

  const Clock& clock_;
  Store& store_;
  const MembershipService& membership_;
  AgentServiceOptions options_;
  Watchdog watchdog_;
  EventLoop loop_;
  ProcessRunner runner_;
  NodeAgent agent_;
  ProxyController proxies_;
  int signal_fd_ = -1;

  std::string published_;  // the status record last written
  int64_t published_mono_ms_ = 0;
  int64_t published_revision_ = 0;  // the store revision of our newest committed write
  // The newest version of this node's record the loop knows of (its own
  // writes, the cache): what the next write replaces. -1: unknown yet.
  int64_t record_revision_ = -1;
  // What info() reports, written by the loop thread.
  mutable std::mutex info_mu_;
  Info info_;                       // guarded by info_mu_; *_ago_ms hold mono ms stamps
  int64_t committed_mono_ms_ = -1;  // guarded by info_mu_
  int64_t refused_claim_ = 0;       // a placement revision whose claim lost: not tried again
  // The watchdog was armed by an earlier daemon of this boot that did not
  // disarm it: until this one has probed, something exclusive may run.
  bool watchdog_recovering_ = false;

  // Status writes run on their own thread: a store that cannot answer (no
  // quorum) must never delay the agent's loop, whose stops and SIGKILLs are
  // due by the lease's end. One write at a time, in order, so that a later
  // record never lands before an earlier one.
  std::thread writer_;
  std::mutex writer_mu_;  // guards writer_job_ and writer_stop_
  std::condition_variable writer_cv_;
  std::optional<Write> writer_job_;
  bool writer_stop_ = false;
  bool write_in_flight_ = false;  // agent thread only
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> shutdown_deadline_ms_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace bulwark
