// The node agent's thread of one daemon life, as src/agent/agent_service.cc
// runs it: feed the real NodeAgent the cached cluster state and the node's
// lease, hand it the runner's completions, make its claims (a status write
// conditioned on the placement key's mod_revision) and publish its status
// (an unconditional put of the node's own key, at most every 50 ms, stamped
// with the membership incarnation), and feed the watchdog.
//
// Status writes and claims go to AgentService's writer thread: one write at
// a time, which takes the store call's simulated time while the agent loop
// runs on; its result is posted back to the loop (on_written), which runs
// it when it next waits, in the order the writes were made.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "agent/node_agent.h"
#include "membership/membership.h"
#include "sim/sim_runner.h"
#include "sim/sim_world.h"
#include "store/schema.h"

namespace bulwark::sim {

class SimAgentLoop {
 public:
  // `watchdog_recovering`: an earlier daemon of this boot armed the
  // watchdog and never disarmed it (AgentService::start's marker).
  SimAgentLoop(const Clock& clock, SimWorld& world, int node, uint64_t incarnation,
               const Schema& schema, const Membership& membership, NodeAgent& agent,
               SimRunner& runner, const std::shared_ptr<const ClusterState>& cache,
               const int64_t& lease_expires_ms, bool watchdog_recovering);

  // Runs the loop if it is due: its poll period passed, a deadline or the
  // agent's next due time came, an operation completed, or a write's result
  // was posted to it.
  void run_if_due();
  // Local ms the writer has waited for the store on the write in flight (its
  // result not yet run by the loop); -1 when no write is in flight.
  int64_t write_in_flight_ms() const {
    return write_in_flight_ ? clock_.mono_ms() - written_since_ms_ : -1;
  }

 private:
  // AgentService::Write.
  struct Write {
    NodeStatusRecord record;
    std::string encoded;  // Schema::encode_status(record)
    std::optional<int64_t> claim;
  };
  // A result the writer posted to the loop (EventLoop::post).
  struct Written {
    Write write;
    std::optional<Error> error;  // kConflict: the claim's compare failed
  };

  void iterate();
  void claim(int64_t placement_revision);
  void publish();
  void submit(Write write);
  void on_written(const Write& write, const std::optional<Error>& error);
  // EventLoop::wait's posted tasks.
  void run_posted();
  void wait();
  // AgentService::build_view. The lease comes from the node's cached lease
  // end, which is what Membership::view() would say (cross-checked now
  // and then), and the state-derived fields are rebuilt only when the
  // state changed: the same view, without its cost on every turn.
  const AgentView& build_view();
  void feed_watchdog(const AgentView& view);
  NodeStatusRecord stamped(NodeStatusRecord rec) const;

  const Clock& clock_;
  SimWorld& world_;
  int node_;
  uint64_t incarnation_;
  const Schema& schema_;
  std::string self_;
  const Membership& membership_;
  NodeAgent& agent_;
  SimRunner& runner_;
  const std::shared_ptr<const ClusterState>& cache_;  // the daemon's watch-fed cache
  const int64_t& lease_expires_ms_;                   // local; kept by SimNode
  const bool watchdog_recovering_;
  bool watchdog_armed_ = false;  // recovering: opened once probed

  std::shared_ptr<const ClusterState> state_;
  int64_t seen_revision_ = -1;
  AgentView view_;
  const ClusterState* view_state_ = nullptr;  // what view_ was built from
  uint64_t turns_ = 0;
  int64_t wake_ms_ = 0;  // local
  bool woken_ = false;   // EventLoop::wake since the loop last waited
  std::deque<Written> posted_;
  bool write_in_flight_ = false;
  int64_t written_since_ms_ = 0;  // local; when the write in flight was submitted
  std::string published_;         // the status record last written
  // A record whose encoding is published_: a record with the same fields
  // encodes the same, which spares an encoding per turn.
  std::optional<NodeStatusRecord> published_record_;
  int64_t published_mono_ms_ = 0;
  int64_t refused_claim_ = 0;
};

}  // namespace bulwark::sim
