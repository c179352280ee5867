#include "sim/sim_coordinator.h"

#include <algorithm>

#include "coordinator/epoch_policy.h"
#include "coordinator/placement_step.h"

namespace bulwark::sim {
namespace {

// Fencer's retry pauses (src/coordinator/fencer.cc).
constexpr int64_t kFenceRetryFirstMs = 500;
constexpr int64_t kFenceRetryMaxMs = 10000;
// Coordinator's waits for the cache after a write (coordinator.cc).
constexpr int kWaitForCacheMs = 500;

}  // namespace

void SimFencer::request(const std::string& target, uint64_t life) {
  if (!configured()) return;
  if (auto c = confirmed_.find(target); c != confirmed_.end() && c->second == life) return;
  Call& call = calls_[target];
  if (call.id != 0 || (call.retry_at_ms != 0 && clock_.mono_ms() < call.retry_at_ms)) return;
  call.retry_at_ms = 0;
  call.life = life;
  call.id = world_.begin_fence(node_, incarnation_, target);
}

void SimFencer::poll() {
  const int64_t now = clock_.mono_ms();
  for (auto& [target, call] : calls_) {
    if (call.id == 0) continue;
    const FenceState st = world_.fence_state(call.id);
    if (st == FenceState::kPending) continue;
    call.id = 0;
    if (st == FenceState::kOff) {
      call.failures = 0;
      confirmed_[target] = call.life;
      world_.trace().add(world_.config().nodes[node_], "fencing: " + target + " is fenced");
      continue;
    }
    ++call.failures;
    call.retry_at_ms =
        now + std::min(kFenceRetryMaxMs, kFenceRetryFirstMs << std::min(call.failures - 1, 5));
  }
}

void SimFencer::forget_if_new_life(const std::string& target, uint64_t life) {
  auto c = confirmed_.find(target);
  if (c == confirmed_.end() || c->second == life) return;
  confirmed_.erase(c);
  world_.trace().add(world_.config().nodes[node_],
                     "fencing: " + target + " is back (a new life): fenced no more");
  auto it = calls_.find(target);
  if (it != calls_.end() && it->second.id == 0) calls_.erase(it);
}

SimCoordinator::SimCoordinator(const Clock& clock, SimWorld& world, int node, uint64_t incarnation,
                               const Schema& schema)
    : clock_(clock),
      world_(world),
      node_(node),
      incarnation_(incarnation),
      schema_(schema),
      self_(world.config().nodes[node]),
      fencer_(clock, world, node, incarnation) {}

void SimCoordinator::log(const std::string& line) {
  world_.trace().add(self_, "coordinator: " + line);
}

bool SimCoordinator::safe_to_replace(const MembershipView& view, const std::string& name) const {
  return lease_lapsed(view, name, world_.config().lease_margin_ms);
}

void SimCoordinator::step(const MembershipView& view, std::shared_ptr<const ClusterState> state,
                          bool settled, Done done) {
  record_seen(*state, clock_.mono_ms(), record_seen_);
  EpochInputs in;
  in.self = self_;
  in.view = view;
  in.record = state->coordinator;
  in.my_token =
      mine_ && !(state->coordinator && state->coordinator->mod_revision > mine_->mod_revision)
          ? mine_->mod_revision
          : 0;
  in.store_loaded = state->loaded;
  in.membership_settled = settled;
  const EpochAction action = decide_epoch_action(in);

  if (mine_ && state->coordinator && state->coordinator->mod_revision > mine_->mod_revision) {
    log("epoch " + std::to_string(mine_->epoch) + " ended; " + state->coordinator->node +
        " coordinates now");
    mine_.reset();
  }

  if (action == EpochAction::kClaim) {
    if (clock_.mono_ms() < next_claim_mono_ms_) return done(true);
    // Store::claim_coordinator.
    CoordinatorRecord next;
    next.node = self_;
    next.epoch = state->coordinator ? state->coordinator->epoch + 1 : 1;
    next.acquired_wall_ms = clock_.wall_ms();
    StoreRequest req;
    req.compares.push_back(
        state->coordinator
            ? Compare::mod_revision(schema_.coordinator_key(), state->coordinator->mod_revision)
            : Compare::absent(schema_.coordinator_key()));
    req.ops.push_back(TxnOp::put(schema_.coordinator_key(), Schema::encode_coordinator(next)));
    req.what = "claim epoch " + std::to_string(next.epoch);
    world_.store_call(node_, incarnation_, std::move(req),
                      [this, view, state, next, done](const StoreReply& r) mutable {
                        if (r.error || !r.txn.succeeded) {
                          // Lost the race, or the store did not answer: back off as
                          // Coordinator::step does.
                          const Errc code = r.error ? r.error->code : Errc::kConflict;
                          if (code == Errc::kUnavailable) {
                            claim_backoff_ms_ = std::min<int64_t>(
                                claim_backoff_ms_ ? claim_backoff_ms_ * 2 : 50, 1000);
                          } else {
                            claim_backoff_ms_ = code == Errc::kConflict ? 20 : 0;
                          }
                          next_claim_mono_ms_ = clock_.mono_ms() + claim_backoff_ms_;
                          return done(true);
                        }
                        claim_backoff_ms_ = 0;
                        next.mod_revision = r.txn.revision;
                        mine_ = next;
                        log("took epoch " + std::to_string(next.epoch) + " (token " +
                            std::to_string(next.mod_revision) + ")");
                        // The cache will show our record shortly; act on what we know now.
                        auto now_state = std::make_shared<ClusterState>(*state);
                        now_state->coordinator = *mine_;
                        act(view, std::move(now_state), [done] { done(false); });
                      });
    return;
  }
  if (action == EpochAction::kAct) return act(view, std::move(state), [done] { done(false); });
  done(false);
}

void SimCoordinator::act(const MembershipView& view, std::shared_ptr<const ClusterState> state,
                         Then then) {
  // The simulated store starts initialised (Store::initialize's result), so
  // schema_version is never 0 here.
  if (!mine_ || state->schema_version == 0) return then();
  // Placement first, then liveness (Coordinator::act).
  place(view, *state, [this, view, state, then] {
    if (!mine_) return then();
    publish_liveness(view, *state, then);
  });
}

void SimCoordinator::publish_liveness(const MembershipView& view, const ClusterState& state,
                                      Then then) {
  LivenessRecord next;
  next.epoch = mine_->epoch;
  for (const auto& [name, node] : state.nodes) {
    const MemberStatus* m = view.find(name);
    next.online[name] = m != nullptr && m->online;
  }
  if (state.liveness && state.liveness->epoch == next.epoch &&
      state.liveness->online == next.online)
    return then();
  std::vector<Compare> cmp = {
      state.liveness ? Compare::mod_revision(schema_.liveness_key(), state.liveness->mod_revision)
                     : Compare::absent(schema_.liveness_key())};
  coordinator_write(std::move(cmp),
                    {TxnOp::put(schema_.liveness_key(), Schema::encode_liveness(next))}, "liveness",
                    [this, then](const Result<int64_t>& r) {
                      if (!r) {
                        if (r.error().code != Errc::kConflict) on_write_failed(r.error());
                        return then();
                      }
                      wait_for_revision(*r, kWaitForCacheMs, then);
                    });
}

void SimCoordinator::place(const MembershipView& view, const ClusterState& state, Then then) {
  if (!mine_) return then();
  // A node back online is forgotten before new confirmations are taken
  // (Coordinator::place).
  for (const auto& m : view.members) {
    if (m.online && m.peer_holds_lease) fencer_.forget_if_new_life(m.name, m.incarnation);
  }
  fencer_.poll();
  PlacementStepInput in;
  in.state = &state;
  in.view = &view;
  in.epoch = mine_->epoch;
  in.lease_margin_ms = world_.config().lease_margin_ms;
  in.lease_ms = world_.config().lease_ms;
  in.fencing = fencer_.configured();
  in.watchdog_ms = world_.config().watchdog_ms;
  in.fenced = fencer_.confirmed();
  for (const auto& [node, seen] : record_seen_) in.record_seen_ms[node] = seen.second;
  const PlacementStep step = plan_placement(in, schema_);
  if (step.waiting_for != waiting_for_ && !step.waiting_for.empty())
    log("placement waits: " + step.waiting_for);
  waiting_for_ = step.waiting_for;
  for (const auto& node : step.fence) {
    auto st = state.statuses.find(node);
    fencer_.request(node, st == state.statuses.end() ? 0 : st->second.incarnation);
  }
  if (!step.write) return then();
  std::string what;
  for (const auto& line : step.write->log) what += (what.empty() ? "" : "; ") + line;
  coordinator_write(step.write->compares, step.write->ops, what,
                    [this, then, what](const Result<int64_t>& r) {
                      if (!r) {
                        if (r.error().code != Errc::kConflict) on_write_failed(r.error());
                        return then();
                      }
                      log(what);
                      wait_for_revision(*r, kWaitForCacheMs, then);
                    });
}

void SimCoordinator::coordinator_write(std::vector<Compare> compares, std::vector<TxnOp> ops,
                                       const std::string& what, Written written) {
  StoreRequest req;
  compares.insert(compares.begin(),
                  Compare::mod_revision(schema_.coordinator_key(), mine_->mod_revision));
  req.compares = std::move(compares);
  req.ops = std::move(ops);
  req.read_coordinator_on_failure = true;
  req.what = "epoch " + std::to_string(mine_->epoch) + " writes " + what;
  const CoordinatorRecord mine = *mine_;
  world_.store_call(node_, incarnation_, std::move(req), [mine, written](const StoreReply& r) {
    if (r.error) return written(*r.error);
    if (r.txn.succeeded) return written(r.txn.revision);
    // Store::coordinator_write: a failed compare is a lost epoch when the
    // record is gone or newer; otherwise (or when that read failed) a
    // conflict of the caller's own compares.
    if (r.coordinator_read && (!r.coordinator || r.coordinator->mod_revision != mine.mod_revision))
      return written(
          make_error(Errc::kEpochSuperseded,
                     "coordinator epoch " + std::to_string(mine.epoch) + " was superseded"));
    written(make_error(Errc::kConflict, "the state changed before the coordinator write"));
  });
}

void SimCoordinator::on_write_failed(const Error& e) {
  if (e.code == Errc::kEpochSuperseded) {
    log("write refused: " + e.message + "; stepping down");
    mine_.reset();
    return;
  }
  log("write failed: " + e.message);
}

void SimCoordinator::wait_for_revision(int64_t revision, int timeout_ms, Then then) {
  wait_revision_ = revision;
  wait_until_ms_ = clock_.mono_ms() + timeout_ms;
  wait_then_ = std::move(then);
}

void SimCoordinator::poll_wait(int64_t cache_revision) {
  if (!wait_then_) return;
  if (cache_revision < wait_revision_ && clock_.mono_ms() < wait_until_ms_) return;
  Then then = std::move(wait_then_);
  wait_then_ = nullptr;
  then();
}

}  // namespace bulwark::sim
