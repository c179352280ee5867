// Runs the node agent in bulwarkd: one thread with an event loop that owns
// the NodeAgent and the ClassDispatcher, feeds the agent the store's view and
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

#include "agent/agent_loop.h"
#include "agent/class_dispatcher.h"
#include "agent/node_agent.h"
#include "membership/membership_service.h"
#include "store/store.h"
#include "sys/event_loop.h"
#include "sys/watchdog.h"

namespace bulwark {

struct AgentServiceOptions {
  AgentOptions agent;
  ClassDispatcherOptions runner;
  WatchdogConfig watchdog;  // no device: none
};

class AgentService final : private AgentLoopIo {
 public:
  AgentService(const Clock& clock, Store& store, const MembershipService& membership,
               AgentServiceOptions options);
  ~AgentService() override;

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
  void run();
  void run_writer();
  void finish_shutdown();
  void reap();

  // AgentLoopIo
  MembershipView membership() const override { return membership_.view(); }
  void submit(StatusJob job) override;
  void wake() override { loop_.wake(); }
  bool watchdog_configured() const override { return !options_.watchdog.device.empty(); }
  bool watchdog_armed() const override { return watchdog_.armed(); }
  Status arm_watchdog() override;
  Status feed_watchdog() override { return watchdog_.keepalive(); }
  void after_step(const ClusterState& state, NodeAgent& agent) override;

  const Clock& clock_;
  Store& store_;
  const MembershipService& membership_;
  AgentServiceOptions options_;
  Watchdog watchdog_;
  EventLoop loop_;
  ClassDispatcher runner_;
  NodeAgent agent_;
  int signal_fd_ = -1;

  AgentLoop agent_loop_;
  // What info() reports, written by the loop thread.
  mutable std::mutex info_mu_;
  Info info_;                       // guarded by info_mu_; *_ago_ms hold mono ms stamps
  int64_t committed_mono_ms_ = -1;  // guarded by info_mu_

  // Status writes run on their own thread: a store that cannot answer (no
  // quorum) must never delay the agent's loop, whose stops and SIGKILLs are
  // due by the lease's end. One write at a time, in order, so that a later
  // record never lands before an earlier one.
  std::thread writer_;
  std::mutex writer_mu_;  // guards writer_job_ and writer_stop_
  std::condition_variable writer_cv_;
  std::optional<StatusJob> writer_job_;
  bool writer_stop_ = false;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> shutdown_deadline_ms_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace bulwark
