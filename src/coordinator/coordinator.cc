#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "coordinator/placement_step.h"

namespace bulwark {
namespace {

// tick(): the role is stepped at least this often.
constexpr int64_t kStepEveryMs = 100;

}  // namespace

Coordinator::Coordinator(const Clock& clock, StoreWrites& writes, CacheWait& cache,
                         FenceLauncher& fence, std::string self,
                         std::vector<NodeRecord> founding_nodes, CoordinatorOptions options)
    : clock_(clock),
      writes_(writes),
      cache_(cache),
      self_(std::move(self)),
      founding_nodes_(std::move(founding_nodes)),
      options_(std::move(options)),
      fencer_(clock, fence, options_.fencing, options_.fence_params) {}

bool Coordinator::safe_to_replace(const MembershipView& view, const std::string& name) const {
  return lease_lapsed(view, name, options_.lease_margin_ms);
}

std::string Coordinator::watched(const ClusterState& state) {
  return state.coordinator ? state.coordinator->node : "";
}

void Coordinator::tick(const ClusterState& state, const MembershipView& view) {
  const int64_t now = clock_.mono_ms();
  const bool settled = now - options_.started_mono_ms >= options_.settle_ms;
  std::string inputs =
      std::to_string(state.revision) + (view.holds_lease ? "L" : "-") + (settled ? "S" : "-");
  for (const auto& m : view.members)
    inputs += m.name + (m.online ? "+" : "-") + (m.peer_sees_watched ? "w" : "") +
              (m.peer_holds_lease ? "l" : "") + (safe_to_replace(view, m.name) ? "s" : "");
  if (inputs == last_inputs_ && now < next_step_ms_) return;
  const bool again = step(view, state, settled);
  last_inputs_ = std::move(inputs);
  next_step_ms_ = again ? now : now + kStepEveryMs;
}

CoordinatorStats Coordinator::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool Coordinator::step(const MembershipView& view, const ClusterState& state,
                       bool membership_settled) {
  // On every step, acting or not: a node that takes the role over knows
  // when it saw each record.
  record_seen(state, clock_.mono_ms(), record_seen_);
  EpochInputs in;
  in.self = self_;
  in.view = view;
  in.record = state.coordinator;
  in.my_token =
      mine_ && !(state.coordinator && state.coordinator->mod_revision > mine_->mod_revision)
          ? mine_->mod_revision
          : 0;
  in.store_loaded = state.loaded;
  in.membership_settled = membership_settled;
  const EpochAction action = decide_epoch_action(in);

  // Our epoch ended only when the store shows a newer coordinator record; a
  // cache still showing an older one is merely behind our claim.
  const bool superseded =
      mine_ && state.coordinator && state.coordinator->mod_revision > mine_->mod_revision;
  if (superseded) {
    spdlog::info("coordinator: epoch {} ended; {} coordinates now (epoch {})", mine_->epoch,
                 state.coordinator->node, state.coordinator->epoch);
    mine_.reset();
  }
  if (action != EpochAction::kAct) {
    // Not acting: lost the lease, or someone else holds the epoch. A lost
    // lease keeps the token, so acting resumes if nobody took over.
    std::lock_guard lock(mu_);
    stats_.acting = false;
  }

  if (action == EpochAction::kClaim) {
    const int64_t now = clock_.mono_ms();
    if (now < next_claim_mono_ms_) return true;
    if (!lease_runs(view)) return true;  // it ran out since the view was taken
    auto claimed = writes_.claim_coordinator(self_, state.coordinator);
    if (!claimed) {
      // Lost the race (another node claimed): look again once the cache has
      // caught up. A claim that timed out (etcd electing a leader) is retried
      // at once: that is the failover path. etcd unavailable: back off up
      // to a second and say so once per failure streak.
      const Errc code = claimed.error().code;
      if (code == Errc::kUnavailable) {
        claim_backoff_ms_ = std::min<int64_t>(claim_backoff_ms_ ? claim_backoff_ms_ * 2 : 50, 1000);
      } else {
        claim_backoff_ms_ = code == Errc::kConflict ? 20 : 0;
      }
      next_claim_mono_ms_ = clock_.mono_ms() + claim_backoff_ms_;
      if (code != Errc::kConflict && claim_failures_++ % 20 == 0)
        spdlog::warn("coordinator: cannot claim the epoch ({} failures so far): {}",
                     claim_failures_, claimed.error().message);
      return true;
    }
    claim_backoff_ms_ = 0;
    claim_failures_ = 0;
    mine_ = *claimed;
    spdlog::info("coordinator: took epoch {} (previous holder: {})", mine_->epoch,
                 state.coordinator ? state.coordinator->node : "none");
    {
      std::lock_guard lock(mu_);
      stats_.acting = true;
      stats_.epoch = mine_->epoch;
      ++stats_.claims;
    }
    // The cache will show our record shortly; act on what we know now.
    ClusterState now_state = state;
    now_state.coordinator = *mine_;
    return act(view, now_state);
  }
  if (action == EpochAction::kAct) {
    {
      std::lock_guard lock(mu_);
      stats_.acting = true;
      stats_.epoch = mine_->epoch;
    }
    return act(view, state);
  }
  return false;
}

void Coordinator::on_write_failed(const Error& e) {
  if (e.code == Errc::kEpochSuperseded) {
    spdlog::warn("coordinator: write refused: {}; stepping down", e.message);
    mine_.reset();
    std::lock_guard lock(mu_);
    stats_.acting = false;
    ++stats_.refused_writes;
    return;
  }
  spdlog::warn("coordinator: write failed: {}", e.message);
}

bool Coordinator::lease_runs(const MembershipView& view) const {
#ifdef BULWARK_MUTATION_NO_LEASE_CHECK
  return true;  // see epoch_policy.cc
#endif
  const MemberStatus* self = view.find(self_);
  return view.holds_lease && self != nullptr && clock_.mono_ms() < self->lease_bound_ms;
}

bool Coordinator::act(const MembershipView& view, const ClusterState& state) {
  if (!mine_ || !lease_runs(view)) return false;
  if (state.schema_version == 0) {
    auto r = writes_.initialize(*mine_, founding_nodes_);
    if (!r) {
      if (r.error().code != Errc::kConflict) on_write_failed(r.error());
      return false;
    }
    spdlog::info("coordinator: initialised the cluster state with {} nodes",
                 founding_nodes_.size());
    cache_.wait_for_revision(*r, 500);
    std::lock_guard lock(mu_);
    ++stats_.writes;
    return true;
  }
  // Placement first: a lost node's fence call and its failover do not wait
  // for the liveness record, which only informs.
  const bool again = place(view, state);
  if (mine_) publish_liveness(view, state);  // a refused write may have ended the epoch
  return again;
}

void Coordinator::publish_liveness(const MembershipView& view, const ClusterState& state) {
  // Publish liveness of the configured nodes when it changes (or when a new
  // epoch has not yet written it).
  LivenessRecord next;
  next.epoch = mine_->epoch;
  for (const auto& [name, node] : state.nodes) {
    const MemberStatus* m = view.find(name);
    next.online[name] = m != nullptr && m->online;
  }
  if (state.liveness && state.liveness->epoch == next.epoch &&
      state.liveness->online == next.online)
    return;
  if (!lease_runs(view)) return;  // the placement write took the rest of it
  std::vector<Compare> cmp;
  if (state.liveness) {
    cmp.push_back(
        Compare::mod_revision(writes_.schema().liveness_key(), state.liveness->mod_revision));
  } else {
    cmp.push_back(Compare::absent(writes_.schema().liveness_key()));
  }
  auto r = writes_.coordinator_write(
      *mine_, cmp, {TxnOp::put(writes_.schema().liveness_key(), Schema::encode_liveness(next))});
  if (!r) {
    if (r.error().code != Errc::kConflict) on_write_failed(r.error());
    return;
  }
  // Let the cache catch up so the next step compares against this write.
  cache_.wait_for_revision(*r, 500);
  std::lock_guard lock(mu_);
  ++stats_.writes;
}

void Coordinator::set_waiting(const std::string& why) {
  std::lock_guard lock(mu_);
  if (why != stats_.waiting_for && !why.empty())
    spdlog::info("coordinator: placement waits: {}", why);
  stats_.waiting_for = why;
}

bool Coordinator::place(const MembershipView& view, const ClusterState& state) {
  if (!mine_) return false;
  // A node that is back (online) is no longer "fenced": should it be lost
  // again, it must be fenced again. Forgotten before new confirmations are
  // taken, so that a confirmation never meets a view older than itself.
  for (const auto& m : view.members) {
    if (m.online && m.peer_holds_lease) fencer_.forget_if_new_life(m.name, m.incarnation);
  }
  fencer_.poll();
  PlacementStepInput in;
  in.state = &state;
  in.view = &view;
  in.epoch = mine_->epoch;
  in.lease_margin_ms = options_.lease_margin_ms;
  in.lease_ms = options_.lease_ms;
  in.fencing = fencer_.configured();
  in.watchdog_ms = options_.watchdog_ms;
  in.fenced = fencer_.confirmed();
  in.fencing_now = fencer_.in_flight_nodes();
  for (const auto& [node, seen] : record_seen_) in.record_seen_ms[node] = seen.second;
#ifdef BULWARK_MUTATION_NO_LEASE_WAIT
  // A deliberate bug, compiled only into tests/sim's mutation check: a node
  // that does not answer counts as fenced at once, so what it ran is placed
  // elsewhere without waiting for its lease or a fence agent. The
  // simulation must catch it (invariant 1).
  in.fencing = true;
  for (const auto& m : view.members) {
    if (auto st = state.statuses.find(m.name); !m.online && st != state.statuses.end())
      in.fenced[m.name] = st->second.incarnation;
  }
#endif
  const PlacementStep step = plan_placement(in, writes_.schema());
  set_waiting(step.waiting_for);
  for (const auto& node : step.fence) {
    auto st = state.statuses.find(node);
    auto why = step.fence_reasons.find(node);
    fencer_.request(node, st == state.statuses.end() ? 0 : st->second.incarnation,
                    why == step.fence_reasons.end() ? "" : why->second);
  }
  if (!step.write) return fencer_.in_flight();
  // Waiting for a fence agent's launch or the cache may have taken the
  // rest of the lease the step was decided under.
  if (!lease_runs(view)) return true;
  auto r = writes_.coordinator_write(*mine_, step.write->compares, step.write->ops);
  if (!r) {
    if (r.error().code != Errc::kConflict) on_write_failed(r.error());
    return fencer_.in_flight();
  }
  // Each change is logged: the history of where things ran and why.
  for (const auto& line : step.write->log) spdlog::info("coordinator: {}", line);
  cache_.wait_for_revision(*r, 500);
  std::lock_guard lock(mu_);
  ++stats_.writes;
  ++stats_.placements;
  return true;
}

}  // namespace bulwark
