#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "coordinator/placement_policy.h"

namespace bulwark {

Coordinator::Coordinator(const Clock& clock, Store& store, std::string self,
                         std::vector<NodeRecord> founding_nodes, CoordinatorOptions options)
    : clock_(clock),
      store_(store),
      self_(std::move(self)),
      founding_nodes_(std::move(founding_nodes)),
      options_(options) {}

bool Coordinator::safe_to_replace(const MembershipView& view, const std::string& name) const {
  const MemberStatus* m = view.find(name);
  // The membership layer proves that `name` held no quorum lease from
  // lease_bound_ms until answers_known_until_ms; the margin covers clock
  // rates and rounding. Should it take a lease again later, it must claim
  // the placement before starting anything exclusive, and that claim and
  // our write exclude each other in the store.
  if (m == nullptr || m->self || !view.holds_lease) return false;
  return m->lease_lapse_proven() &&
         m->answers_known_until_ms >= m->lease_bound_ms + options_.lease_margin_ms;
}

CoordinatorStats Coordinator::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool Coordinator::step(const MembershipView& view, const ClusterState& state,
                       bool membership_settled) {
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
    auto claimed = store_.claim_coordinator(self_, state.coordinator);
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
    act(view, now_state);
    return false;
  }
  if (action == EpochAction::kAct) {
    {
      std::lock_guard lock(mu_);
      stats_.acting = true;
      stats_.epoch = mine_->epoch;
    }
    act(view, state);
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

void Coordinator::act(const MembershipView& view, const ClusterState& state) {
  if (!mine_) return;
  if (state.schema_version == 0) {
    auto r = store_.initialize(*mine_, founding_nodes_);
    if (!r) {
      if (r.error().code != Errc::kConflict) on_write_failed(r.error());
      return;
    }
    spdlog::info("coordinator: initialised the cluster state with {} nodes",
                 founding_nodes_.size());
    store_.wait_for_revision(*r, 500);
    std::lock_guard lock(mu_);
    ++stats_.writes;
    return;
  }
  publish_liveness(view, state);
  place(view, state);
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
  std::vector<Compare> cmp;
  if (state.liveness) {
    cmp.push_back(
        Compare::mod_revision(store_.schema().liveness_key(), state.liveness->mod_revision));
  } else {
    cmp.push_back(Compare::absent(store_.schema().liveness_key()));
  }
  auto r = store_.coordinator_write(
      *mine_, cmp, {TxnOp::put(store_.schema().liveness_key(), Schema::encode_liveness(next))});
  if (!r) {
    if (r.error().code != Errc::kConflict) on_write_failed(r.error());
    return;
  }
  // Let the cache catch up so the next step compares against this write.
  store_.wait_for_revision(*r, 500);
  std::lock_guard lock(mu_);
  ++stats_.writes;
}

void Coordinator::set_waiting(const std::string& why) {
  std::lock_guard lock(mu_);
  if (why != stats_.waiting_for && !why.empty())
    spdlog::info("coordinator: placement waits: {}", why);
  stats_.waiting_for = why;
}

bool Coordinator::void_lost_nodes(const MembershipView& view, const ClusterState& state) {
  const ResourceConfig& config = *state.resource_config;
  bool wrote = false;
  for (const auto& [name, st] : state.statuses) {
    const MemberStatus* m = view.find(name);
    if (m == nullptr || m->self || (m->online && m->peer_holds_lease)) continue;
    // Only exclusive instances matter: a clone may run on a lost node.
    NodeStatusRecord next = st;
    bool changed = false;
    for (auto& [res, is] : next.resources) {
      const ResourceSpec* spec = config.find(res);
      const bool singleton = !spec || spec->kind == ResourceKind::kSingleton;
      if (is.state == InstanceState::kPromoted) {
        is.state = InstanceState::kStarted;  // demoted when it lost its lease
        changed = true;
      } else if (singleton && is.state != InstanceState::kStopped) {
        is.state = InstanceState::kStopped;
        changed = true;
      }
    }
    if (!changed || !safe_to_replace(view, name)) continue;
    next.voided = "its quorum lease expired everywhere";
    auto r = store_.coordinator_write(
        *mine_, {Compare::mod_revision(store_.schema().status_key(name), st.mod_revision)},
        {TxnOp::put(store_.schema().status_key(name), Schema::encode_status(next))});
    if (!r) {
      if (r.error().code != Errc::kConflict) on_write_failed(r.error());
      return true;
    }
    spdlog::warn("coordinator: node {} is lost and {}: its exclusive resources count as stopped",
                 name, next.voided);
    store_.wait_for_revision(*r, 500);
    wrote = true;
  }
  return wrote;
}

void Coordinator::place(const MembershipView& view, const ClusterState& state) {
  if (!mine_ || !state.resources) return;
  if (!state.resource_config) return set_waiting("the applied resources do not parse");
  if (state.directives.maintenance) return set_waiting("the cluster is in maintenance mode");
  if (void_lost_nodes(view, state)) return;  // the next step sees the rewritten records
  PolicyInput in;
  in.config = state.resource_config.get();
  in.moves = state.directives.moves;
  in.bans = state.directives.bans;
  for (const auto& [name, node] : state.nodes) {
    const MemberStatus* m = view.find(name);
    PolicyNode pn;
    pn.name = name;
    pn.attributes = node.attributes;
    // A node in maintenance keeps what it runs (unmanaged); standby empties.
    pn.standby = node.mode == NodeMode::kStandby;
    // Online for placement: we reach it and it holds its own lease.
    pn.online = m != nullptr && (m->self ? view.holds_lease : m->online && m->peer_holds_lease);
    pn.safe_to_replace = !pn.online && safe_to_replace(view, name);
    const auto st = state.statuses.find(name);
    // A node that runs but has not yet told what runs on it may run
    // anything: nothing is placed until it has. A record from an earlier
    // daemon of the node (another incarnation) does not count.
    if (pn.online && (st == state.statuses.end() || !st->second.probed ||
                      st->second.incarnation != m->incarnation))
      return set_waiting("node " + name + " has not yet probed its resources");
    if (st != state.statuses.end() && !pn.safe_to_replace) {
      for (const auto& [res, is] : st->second.resources) {
        if (is.fail_count > 0) in.fail_counts[res][name] = is.fail_count;
        if (is.state != InstanceState::kStopped)
          in.running[res].push_back({name, is.state == InstanceState::kPromoted});
      }
    }
    in.nodes.push_back(std::move(pn));
  }
  set_waiting("");
  const Placement p = compute_placement(in);
  PlacementRecord next;
  next.epoch = mine_->epoch;
  next.resources_revision = state.resources->mod_revision;
  for (const auto& [name, rp] : p.resources)
    next.resources[name] = PlacedResource{rp.nodes, rp.promoted, rp.reason};
  if (state.placement && state.placement->resources == next.resources &&
      state.placement->resources_revision == next.resources_revision)
    return;
  std::vector<Compare> cmp;
  const std::string key = store_.schema().placement_key();
  cmp.push_back(state.placement ? Compare::mod_revision(key, state.placement->mod_revision)
                                : Compare::absent(key));
  // A node may claim an exclusive resource (start it, promote it) under the
  // placement it saw, which assigns it that resource. Changing such an entry
  // is valid only if none of those nodes has claimed since we read their
  // status (a claim rewrites it): claims and this write exclude each other.
  std::set<std::string> claimants;
  for (const auto& [name, placed] : next.resources) {
    const ResourceSpec* spec = in.config->find(name);
    if (!spec || !state.placement) continue;
    auto old = state.placement->resources.find(name);
    if (old == state.placement->resources.end() || old->second == placed) continue;
    const auto& holders =
        spec->kind == ResourceKind::kSingleton ? old->second.nodes : old->second.promoted;
    claimants.insert(holders.begin(), holders.end());
  }
  for (const auto& node : claimants) {
    const auto st = state.statuses.find(node);
    cmp.push_back(
        st != state.statuses.end()
            ? Compare::mod_revision(store_.schema().status_key(node), st->second.mod_revision)
            : Compare::absent(store_.schema().status_key(node)));
  }
  auto r = store_.coordinator_write(*mine_, cmp, {TxnOp::put(key, Schema::encode_placement(next))});
  if (!r) {
    if (r.error().code != Errc::kConflict) on_write_failed(r.error());
    return;
  }
  // Each change is logged: the history of where things ran and why.
  const auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
    return out.empty() ? std::string("-") : out;
  };
  for (const auto& [name, placed] : next.resources) {
    const PlacedResource* old = nullptr;
    if (state.placement) {
      auto it = state.placement->resources.find(name);
      if (it != state.placement->resources.end()) old = &it->second;
    }
    if (old && *old == placed) continue;
    spdlog::info("coordinator: {} on {}{}{}{}", name, join(placed.nodes),
                 placed.promoted.empty() ? "" : " promoted " + join(placed.promoted),
                 old ? " (was " + join(old->nodes) + ")" : "",
                 placed.reason.empty() ? "" : ": " + placed.reason);
  }
  store_.wait_for_revision(*r, 500);
  std::lock_guard lock(mu_);
  ++stats_.writes;
  ++stats_.placements;
}

}  // namespace bulwark
