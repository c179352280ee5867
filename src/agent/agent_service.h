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
#include <memory>
#include <string>
#include <thread>

#include "agent/node_agent.h"
#include "agent/process_runner.h"
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

 private:
  void run();
  AgentView build_view(const ClusterState& state) const;
  void publish(bool force);
  void claim(int64_t placement_revision);
  void reap();
  void feed_watchdog(const AgentView& view);
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
  int signal_fd_ = -1;

  std::string published_;  // the status record last written
  int64_t published_mono_ms_ = 0;
  int64_t refused_claim_ = 0;  // a placement revision whose claim lost: not tried again
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> shutdown_deadline_ms_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace bulwark
