#include "coordinator/placement_step.h"

#include <algorithm>

#include "coordinator/placement_policy.h"
#include "core/check.h"

namespace bulwark {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? std::string("-") : out;
}

// Online for placement: we reach it and it holds its own lease.
bool online(const MembershipView& view, const MemberStatus* m) {
  return m != nullptr && (m->self ? view.holds_lease : m->online && m->peer_holds_lease);
}

// The status record of a lost node with its exclusive instances recorded
// as stopped (promoted ones as demoted); nullopt if it has none running.
// After a fence every instance counts as stopped, clones and those whose
// stop failed (blocked) too: the node was switched off. (Clone instances
// of a node that merely lost its lease may still run.)
std::optional<NodeStatusRecord> voided(const NodeStatusRecord& st, const ResourceConfig& config,
                                       bool fenced) {
  NodeStatusRecord next = st;
  bool changed = false;
  for (auto& [res, is] : next.resources) {
    if (fenced) {
      if (is.state != InstanceState::kStopped || is.promoted) {
        is.state = InstanceState::kStopped;
        is.promoted = false;
        changed = true;
      }
      continue;
    }
    const ResourceSpec* spec = config.find(res);
    const bool singleton = !spec || spec->kind == ResourceKind::kSingleton;
    if (is.state == InstanceState::kPromoted || is.promoted) {
      // It demoted (or stopped) when it lost its lease.
      if (is.state == InstanceState::kPromoted) is.state = InstanceState::kStarted;
      is.promoted = false;
      changed = true;
    }
    if (singleton && is.state != InstanceState::kStopped) {
      is.state = InstanceState::kStopped;
      changed = true;
    }
  }
  if (!changed) return std::nullopt;
  return next;
}

// An OCF or systemd stop cannot be cut short at the lease's end (only an
// exec resource's process can be SIGKILLed, and a VIP's removal is
// immediate): a node that lost its lease
// runs them to their timeouts (SIGTERM, then SIGKILL 2 s later), a demote
// and a stop for a promoted instance. Without fencing, the coordinator
// waits that long too.
int64_t stop_allowance_ms(const NodeStatusRecord& st, const ResourceConfig& config) {
  int64_t wait_ms = 0;
  for (const auto& [res, is] : st.resources) {
    const ResourceSpec* spec = config.find(res);
    // An outdated instance may run another agent class than the file says
    // (one whose stop cannot be cut short): no shortcut for it.
    if (!spec || (spec->agent.stop_ends_with_lease() && !is.outdated) ||
        is.state == InstanceState::kStopped)
      continue;
    const bool promoted = is.promoted || is.state == InstanceState::kPromoted;
    if (!promoted && spec->kind != ResourceKind::kSingleton) continue;
    wait_ms =
        std::max(wait_ms, (promoted ? 2 : 1) * (spec->stop_timeout_ms + kOperationTermGraceMs));
  }
  return wait_ms;
}

PlacementStep place_on(const ClusterState& state, const PlacementStepInput& in,
                       const Schema& schema, StoreWrite w, PlacementStep out);

}  // namespace

void record_seen(const ClusterState& state, int64_t now_ms,
                 std::map<std::string, std::pair<int64_t, int64_t>>& seen) {
  std::erase_if(seen, [&](const auto& e) { return !state.statuses.count(e.first); });
  for (const auto& [node, st] : state.statuses) {
    auto [it, added] = seen.try_emplace(node, st.mod_revision, now_ms);
    if (!added && it->second.first != st.mod_revision) it->second = {st.mod_revision, now_ms};
  }
}

bool lease_lapsed(const MembershipView& view, const std::string& name, int64_t margin_ms) {
  const MemberStatus* m = view.find(name);
  // The membership layer proves that `name` held no quorum lease from
  // lease_bound_ms until answers_known_until_ms; the margin covers clock
  // rates and rounding. Should it take a lease again later, it must claim
  // the placement before starting anything exclusive, and that claim and
  // our write exclude each other in the store.
  if (m == nullptr || m->self || !view.holds_lease) return false;
  return m->lease_lapse_proven() && m->answers_known_until_ms >= m->lease_bound_ms + margin_ms;
}

PolicyInputs policy_inputs(const ClusterState& state, const MembershipView& view,
                           const ResourceConfig& config) {
  PolicyInputs out;
  out.input.config = &config;
  out.input.moves = state.directives.moves;
  out.input.bans = state.directives.bans;
  out.input.disabled = state.directives.disabled;
  for (const auto& [name, node] : state.nodes) {
    const MemberStatus* m = view.find(name);
    PolicyNode pn;
    pn.name = name;
    pn.attributes = node.attributes;
    // A node in maintenance keeps what it runs (unmanaged); standby empties.
    pn.standby = node.mode == NodeMode::kStandby;
    pn.online = online(view, m);
    const auto st = state.statuses.find(name);
    pn.may_be_up = !pn.online && m != nullptr && !m->self && !m->lease_lapse_proven() &&
                   (st == state.statuses.end() || st->second.voided.empty());
    // A node that runs but has not yet told what runs on it may run
    // anything: nothing is placed until it has. A record from an earlier
    // daemon of the node (another incarnation) does not count.
    if (pn.online && (st == state.statuses.end() || !st->second.probed ||
                      st->second.incarnation != m->incarnation)) {
      if (out.held.empty()) out.held = "node " + name + " has not yet probed its resources";
    }
    // A restarted daemon answers before it holds its lease: until it has
    // rejoined and probed, nothing of the node moves (what runs there is
    // adopted, not restarted elsewhere and then here again). It may have
    // probed and written its record already, and still need a few round
    // trips for its lease: held for a short while (MemberStatus::rejoining).
    if (!pn.online && m != nullptr && m->online && !m->self &&
        (st == state.statuses.end() || st->second.incarnation != m->incarnation || m->rejoining)) {
      if (out.held.empty()) out.held = "node " + name + " restarted and has not rejoined yet";
    }
    if (st != state.statuses.end()) {
      for (const auto& [res, is] : st->second.resources) {
        if (is.fail_count > 0) out.input.fail_counts[res][name] = is.fail_count;
        if (is.state == InstanceState::kStopped) continue;
        bool promoted = is.state == InstanceState::kPromoted || is.promoted;
        if (is.claim_pending) {
          // A start or promotion that waits for a claim on a placement this
          // one replaced can never happen: its claim fails. (One the
          // current placement asks for counts as if under way.)
          const PlacedResource* placed = nullptr;
          if (state.placement) {
            auto p = state.placement->resources.find(res);
            if (p != state.placement->resources.end()) placed = &p->second;
          }
          const auto listed = [node = name](const std::vector<std::string>& v) {
            return std::find(v.begin(), v.end(), node) != v.end();
          };
          if (!placed || !listed(placed->nodes)) continue;
          promoted = promoted && listed(placed->promoted);
        }
        out.input.running[res].push_back({name, promoted});
      }
    }
    out.input.nodes.push_back(std::move(pn));
  }
  for (const auto& [name, st] : state.statuses) {
    if (state.node_keys.count(name)) continue;
    PolicyNode gone;  // removed: never eligible, never provably off
    gone.name = name;
    gone.online = false;
    for (const auto& [res, is] : st.resources) {
      if (is.state != InstanceState::kStopped)
        out.input.running[res].push_back(
            {name, is.state == InstanceState::kPromoted || is.promoted});
    }
    out.input.nodes.push_back(std::move(gone));
  }
  return out;
}

PlacementStep plan_placement(const PlacementStepInput& in, const Schema& schema) {
  PlacementStep out;
  const ClusterState& state = *in.state;
  const MembershipView& view = *in.view;
  if (state.resources_unreadable) {
    out.waiting_for = "the applied resources record cannot be read";
    return out;
  }
  if (!state.resources) return out;
  if (!state.resource_config) {
    out.waiting_for = "the applied resources do not parse";
    return out;
  }
  if (state.directives.maintenance) {
    out.waiting_for = "the cluster is in maintenance mode";
    return out;
  }
  const ResourceConfig& config = *state.resource_config;

  // The record of a node no longer in the cluster goes once nothing
  // exclusive runs there (its daemon stops everything when it learns of its
  // removal); until then, what it reports stays pinned there (below).
  for (const auto& [name, st] : state.statuses) {
    if (state.node_keys.count(name) || voided(st, config, false)) continue;
    StoreWrite w;
    w.compares.push_back(Compare::mod_revision(schema.status_key(name), st.mod_revision));
    w.ops.push_back(TxnOp::del(schema.status_key(name)));
    w.log.push_back("the status record of removed node " + name + " is deleted");
    out.write = std::move(w);
    return out;
  }

  // A lost node's exclusive resources count as stopped once it is fenced
  // (or, without fencing, once its lease has lapsed everywhere): its status
  // is rewritten to say so, conditioned on nobody having written it since.
  // The placement below is computed on the rewritten records and committed
  // in the same transaction: a failover is one write.
  StoreWrite w;
  std::optional<ClusterState> patched;
  // A fence call is an act on another node that no store compare guards:
  // only by a coordinator whose majority is fresh (PlacementStepInput::lease_ms).
  const bool may_fence =
      in.fencing && view.holds_lease && view.lease_remaining_ms * 2 >= in.lease_ms;
  for (const auto& [name, st] : state.statuses) {
    const MemberStatus* m = view.find(name);
    if (m == nullptr || m->self || !view.holds_lease) continue;
    const auto fenced = in.fenced.find(name);
    const bool fenced_this_life = fenced != in.fenced.end() && fenced->second == st.incarnation;
    // A node in maintenance is the operator's: its resources run on as they
    // are, even with its daemon stopped (a rolling upgrade). It is neither
    // fenced nor counted stopped; what it runs stays pinned there.
    const auto node = state.nodes.find(name);
    const bool maintenance =
        node != state.nodes.end() && node->second.mode == NodeMode::kMaintenance;
    if (maintenance && !fenced_this_life) continue;
    // Pacemaker's rule: a stop that failed (blocked) leaves the node in a
    // state nobody knows, and with fencing the node is fenced. Only the
    // record of its current life counts: a new life probes for itself.
    if (may_fence && !fenced_this_life && st.incarnation == m->incarnation) {
      auto blocked = std::find_if(st.resources.begin(), st.resources.end(), [](const auto& e) {
        return e.second.state == InstanceState::kBlocked && !e.second.unmanaged;
      });
      if (blocked != st.resources.end()) {
        out.fence.push_back(name);
        out.fence_reasons[name] =
            "its stop of " + blocked->first + " failed (" + blocked->second.last_failure + ")";
        continue;
      }
    }
    // The record of a life a fence agent ended is void whatever the view
    // says (a view can lag a power-off by a lease, or show the node's next
    // life already); a newer life writes its own record.
    if (online(view, m) && !fenced_this_life) continue;
    auto next = voided(st, config, fenced_this_life);
    if (!next) continue;
    // An instance left alone (maintenance, unmanaged) is not stopped when
    // its node loses its lease: no lease proves it gone, only a fence.
    const bool left_alone =
        std::any_of(st.resources.begin(), st.resources.end(), [](const auto& e) {
          return e.second.unmanaged && e.second.state != InstanceState::kStopped;
        });
    // A record written (seen) after the proven lapse may hold a claim made
    // under a new lease (PlacementStepInput::record_seen_ms).
    const auto seen = in.record_seen_ms.find(name);
    const bool seen_in_lapse = seen != in.record_seen_ms.end() &&
                               seen->second + in.lease_margin_ms <= m->answers_known_until_ms;
    if (in.fencing ? !fenced_this_life
                   : left_alone || !seen_in_lapse ||
                         !lease_lapsed(
                             view, name,
                             in.lease_margin_ms + in.watchdog_ms + stop_allowance_ms(st, config))) {
      // Fenced only when we cannot reach it: a node that answers but holds
      // no lease (it just started, or lost its majority) stops its exclusive
      // resources itself and reports so. And only by a coordinator whose
      // majority is fresh (PlacementStepInput::lease_ms).
      if (may_fence && !m->online) out.fence.push_back(name);
      continue;
    }
    next->voided = in.fencing       ? "fenced"
                   : in.watchdog_ms ? "its quorum lease expired everywhere and its watchdog fired"
                                    : "its quorum lease expired everywhere";
    w.compares.push_back(Compare::mod_revision(schema.status_key(name), st.mod_revision));
    w.ops.push_back(TxnOp::put(schema.status_key(name), Schema::encode_status(*next)));
    w.log.push_back("node " + name + " is lost and " + next->voided +
                    (fenced_this_life ? ": everything it ran counts as stopped"
                                      : ": its exclusive resources count as stopped"));
    if (!patched) patched = state;
    patched->statuses[name] = std::move(*next);
  }
  return place_on(patched ? *patched : state, in, schema, std::move(w), std::move(out));
}

namespace {

// What the policy promises, checked where the coordinator commits it.
void assert_placement(const Placement& p, const ResourceConfig& config,
                      const std::set<std::string>& fencing_now) {
  for (const auto& [name, rp] : p.resources) {
    const ResourceSpec* spec = config.find(name);
    BW_ASSERT(spec != nullptr, "the policy places only configured resources");
    BW_ASSERT(spec->kind != ResourceKind::kSingleton || rp.nodes.size() <= 1,
              "a singleton is placed on one node at most");
    BW_ASSERT(rp.promoted.size() <= static_cast<std::size_t>(std::max(spec->promoted_max, 0)),
              "no more than promoted_max instances are placed promoted");
    BW_ASSERT(
        std::includes(rp.nodes.begin(), rp.nodes.end(), rp.promoted.begin(), rp.promoted.end()),
        "a promoted instance is placed on its node");
    BW_ASSERT(std::none_of(rp.nodes.begin(), rp.nodes.end(),
                           [&](const std::string& n) { return fencing_now.count(n) > 0; }),
              "nothing is placed on a node being fenced");
  }
}

// Adds to `w` the write of `next` over the committed placement: its log
// lines, and the compares that make it exclude the claims of the nodes
// whose exclusive entries it changes.
void add_placement_write(const ClusterState& state, const PlacementRecord& next,
                         const ResourceConfig& config, const Schema& schema, StoreWrite& w) {
  const std::string key = schema.placement_key();
  w.compares.push_back(state.placement ? Compare::mod_revision(key, state.placement->mod_revision)
                                       : Compare::absent(key));
  // A node may claim an exclusive resource (start it, promote it) under the
  // placement it saw, which assigns it that resource. Changing such an entry
  // is valid only if none of those nodes has claimed since we read their
  // status (a claim rewrites it): claims and this write exclude each other.
  std::set<std::string> claimants;
  for (const auto& [name, placed] : next.resources) {
    const PlacedResource* old = nullptr;
    if (state.placement) {
      auto it = state.placement->resources.find(name);
      if (it != state.placement->resources.end()) old = &it->second;
    }
    if (old && *old == placed) continue;
    w.log.push_back(name + " on " + join(placed.nodes) +
                    (placed.promoted.empty() ? "" : " promoted " + join(placed.promoted)) +
                    (old ? " (was " + join(old->nodes) + ")" : "") +
                    (placed.reason.empty() ? "" : ": " + placed.reason));
    const ResourceSpec* spec = config.find(name);
    if (!spec || !old) continue;
    const auto& holders = spec->kind == ResourceKind::kSingleton ? old->nodes : old->promoted;
    claimants.insert(holders.begin(), holders.end());
  }
  for (const auto& node : claimants) {
    // A record voided above is compared already, at the same revision.
    if (std::any_of(w.compares.begin(), w.compares.end(),
                    [&](const Compare& c) { return c.key == schema.status_key(node); }))
      continue;
    const auto st = state.statuses.find(node);
    w.compares.push_back(st != state.statuses.end() ? Compare::mod_revision(schema.status_key(node),
                                                                            st->second.mod_revision)
                                                    : Compare::absent(schema.status_key(node)));
  }
  w.ops.push_back(TxnOp::put(key, Schema::encode_placement(next)));
}

PlacementStep place_on(const ClusterState& state, const PlacementStepInput& in,
                       const Schema& schema, StoreWrite w, PlacementStep out) {
  const MembershipView& view = *in.view;
  const ResourceConfig& config = *state.resource_config;
  // Whatever holds the placement back, the voided records are written.
  const auto held = [&](std::string why) {
    out.waiting_for = std::move(why);
    if (!w.ops.empty()) out.write = std::move(w);
    return out;
  };

  PolicyInputs inputs = policy_inputs(state, view, config);
  if (!inputs.held.empty()) return held(inputs.held);
  for (PolicyNode& n : inputs.input.nodes) n.fencing = in.fencing_now.count(n.name) > 0;
  const Placement p = compute_placement(inputs.input);
  assert_placement(p, config, in.fencing_now);
  PlacementRecord next;
  next.epoch = in.epoch;
  next.resources_revision = state.resources->mod_revision;
  for (const auto& [name, rp] : p.resources)
    next.resources[name] = PlacedResource{rp.nodes, rp.promoted, rp.reason};
  if (state.placement && state.placement->resources == next.resources &&
      state.placement->resources_revision == next.resources_revision)
    return held("");
  add_placement_write(state, next, config, schema, w);
  out.write = std::move(w);
  return out;
}

}  // namespace
}  // namespace bulwark
