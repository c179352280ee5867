// The node agent's loop, one turn at a time: feeds the NodeAgent the store's
// view and the node's lease, hands it the runner's completions, makes its
// claims and publishes its status record (one write at a time), and feeds
// the watchdog. It owns no thread, descriptor or device: AgentService runs
// it on its thread in bulwarkd, and the simulation (tests/sim) runs the same
// object on a simulated thread, through AgentLoopIo.
//
// Thread-safety: one thread (the loop's) calls everything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "agent/node_agent.h"
#include "agent/operation.h"
#include "core/env.h"
#include "membership/membership.h"
#include "store/schema.h"
#include "store/store_writes.h"

namespace bulwark {

// A write of this node's status record; with `claim`, conditioned on the
// placement revision.
struct StatusJob {
  NodeStatusRecord record;
  std::optional<int64_t> claim;
  int64_t record_revision = 0;  // the version of the record it replaces
};

// What the loop touches around it.
class AgentLoopIo {
 public:
  virtual ~AgentLoopIo() = default;
  virtual MembershipView membership() const = 0;
  // Starts a status write (StoreWrites::put_status) without waiting for it;
  // its result comes back through AgentLoop::on_written on the loop's
  // thread. One at a time: the loop submits no other until then.
  virtual void submit(StatusJob job) = 0;
  // The loop should turn again at once.
  virtual void wake() = 0;
  // The watchdog device, if one is configured: arming opens it (which
  // counts as a keepalive) and leaves the marker that says a daemon of this
  // boot armed it.
  virtual bool watchdog_configured() const = 0;
  virtual bool watchdog_armed() const = 0;
  virtual Status arm_watchdog() = 0;
  virtual Status feed_watchdog() = 0;
  // After each step of the agent (bulwarkd: the proxies follow what runs
  // here and acknowledge drains).
  virtual void after_step(const ClusterState& state, NodeAgent& agent) {
    (void)state;
    (void)agent;
  }
};

class AgentLoop {
 public:
  AgentLoop(const Clock& clock, NodeAgent& agent, OperationRunner& runner, AgentLoopIo& io,
            std::string node);
  // Before the first turn: an earlier daemon of this boot armed the
  // watchdog and did not disarm it (it crashed, and what it ran exclusively
  // may still run); the device is opened only once every resource is probed.
  void set_watchdog_recovering(bool recovering) { watchdog_recovering_ = recovering; }

  // One turn on the store state `state`: the runner's deadlines and
  // completions, the agent's step, the watchdog, a claim, a publish.
  // Returns the local mono ms by which the loop must turn again.
  int64_t turn(const ClusterState& state);
  // The result of the write `job` (AgentLoopIo::submit).
  void on_written(const StatusJob& job, const Result<StoreWrites::StatusWrite>& result);

  // At shutdown, once no write is in flight: the record to write last, if
  // it differs from the one published.
  std::optional<StatusJob> final_record() const;

  bool write_in_flight() const { return write_in_flight_; }
  // When the newest status write committed (local mono ms); -1: none yet.
  int64_t committed_mono_ms() const { return committed_mono_ms_; }
  // Of the newest failed write, if the last one failed.
  const std::string& write_error() const { return write_error_; }

 private:
  const AgentView& build_view(const ClusterState& state);
  void publish(const ClusterState& state);
  void claim(int64_t placement_revision);
  void submit(StatusJob job);
  void feed_watchdog(const AgentView& view);
  // The record with this daemon's membership incarnation (as the turn's
  // membership view said it).
  NodeStatusRecord stamped(NodeStatusRecord rec) const;

  const Clock& clock_;
  NodeAgent& agent_;
  OperationRunner& runner_;
  AgentLoopIo& io_;
  std::string node_;
  bool watchdog_recovering_ = false;

  int64_t seen_revision_ = -1;
  AgentView view_;  // build_view(): the store's part is of view_revision_
  bool view_built_ = false;
  uint64_t incarnation_ = 0;  // this daemon's, from build_view's membership view
  int64_t view_revision_ = 0;
  std::string published_;  // the status record last written
  // A record whose encoding is published_ (publish(): a cheap comparison).
  std::optional<NodeStatusRecord> published_record_;
  int64_t published_mono_ms_ = 0;
  int64_t published_revision_ = 0;  // the store revision of our newest committed write
  // The newest version of this node's record the loop knows of (its own
  // writes, the cache): what the next write replaces. -1: unknown yet.
  int64_t record_revision_ = -1;
  int64_t refused_claim_ = 0;  // a placement revision whose claim lost: not tried again
  bool write_in_flight_ = false;
  int64_t committed_mono_ms_ = -1;
  std::string write_error_;
};

}  // namespace bulwark
