// The coordinator role of one daemon life, as src/coordinator/coordinator.cc
// runs it, against the simulated store: the real decide_epoch_action and
// plan_placement, the same claim (a compare on the coordinator key, as
// Store::claim_coordinator) and the same writes (each compares the
// coordinator record's mod_revision with the epoch this node holds, as
// Store::coordinator_write), with the same back-off and the same waits for
// the cache. Store calls take simulated time, during which the control
// thread is blocked, so every step ends through a callback.
//
// Also the fence agent runner with Fencer's contract (src/coordinator/
// fencer.h), over simulated fence calls that power the target off.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/env.h"
#include "membership/membership.h"
#include "sim/sim_world.h"
#include "store/schema.h"

namespace bulwark::sim {

class SimFencer {
 public:
  SimFencer(const Clock& clock, SimWorld& world, int node, uint64_t incarnation)
      : clock_(clock), world_(world), node_(node), incarnation_(incarnation) {}

  bool configured() const { return world_.config().fencing; }
  void request(const std::string& target, uint64_t life);
  void poll();
  void forget_if_new_life(const std::string& target, uint64_t life);
  const std::map<std::string, uint64_t>& confirmed() const { return confirmed_; }

 private:
  struct Call {
    uint64_t id = 0;  // in flight; 0: none
    int64_t retry_at_ms = 0;
    int failures = 0;
    uint64_t life = 0;  // the incarnation being fenced
  };
  const Clock& clock_;
  SimWorld& world_;
  int node_;
  uint64_t incarnation_;
  std::map<std::string, Call> calls_;
  std::map<std::string, uint64_t> confirmed_;
};

class SimCoordinator {
 public:
  using Done = std::function<void(bool again)>;

  SimCoordinator(const Clock& clock, SimWorld& world, int node, uint64_t incarnation,
                 const Schema& schema);

  bool safe_to_replace(const MembershipView& view, const std::string& name) const;
  // Coordinator::step; `done(again)` runs once the step is over.
  void step(const MembershipView& view, std::shared_ptr<const ClusterState> state, bool settled,
            Done done);
  // Store::wait_for_revision, as the control thread blocks in it after a
  // write: resumes once the cache has `revision` or the timeout passed.
  void poll_wait(int64_t cache_revision);

 private:
  using Then = std::function<void()>;
  using Written = std::function<void(const Result<int64_t>&)>;
  void act(const MembershipView& view, std::shared_ptr<const ClusterState> state, Then then);
  void publish_liveness(const MembershipView& view, const ClusterState& state, Then then);
  void place(const MembershipView& view, const ClusterState& state, Then then);
  void coordinator_write(std::vector<Compare> compares, std::vector<TxnOp> ops,
                         const std::string& what, Written written);
  void on_write_failed(const Error& e);
  void wait_for_revision(int64_t revision, int timeout_ms, Then then);
  void log(const std::string& line);

  const Clock& clock_;
  SimWorld& world_;
  int node_;
  uint64_t incarnation_;
  const Schema& schema_;
  std::string self_;
  SimFencer fencer_;
  std::optional<CoordinatorRecord> mine_;
  std::map<std::string, std::pair<int64_t, int64_t>> record_seen_;  // Coordinator::record_seen_
  int64_t next_claim_mono_ms_ = 0;
  int64_t claim_backoff_ms_ = 0;
  std::string waiting_for_;
  // wait_for_revision in progress
  int64_t wait_revision_ = 0;
  int64_t wait_until_ms_ = 0;
  Then wait_then_;
};

}  // namespace bulwark::sim
