#include "sim/sim_agent_loop.h"

#include <algorithm>
#include <limits>

#include "core/check.h"

namespace bulwark::sim {
namespace {

// AgentService's constants (src/agent/agent_service.cc).
constexpr int64_t kPollMs = 10;
constexpr int64_t kPublishMinMs = 50;

// "probed vip:starting volume:stopped ..." for the trace.
std::string summary(const NodeStatusRecord& rec) {
  std::string out = rec.probed ? "probed" : "unprobed";
  for (const auto& [name, st] : rec.resources) {
    if (st.state == InstanceState::kStopped && !st.promoted) continue;
    out += " " + name + ":" + instance_state_name(st.state) + (st.promoted ? "(promoted)" : "");
  }
  return out;
}

const ClusterState& empty_state() {
  static const ClusterState kEmpty;
  return kEmpty;
}

}  // namespace

SimAgentLoop::SimAgentLoop(const Clock& clock, SimWorld& world, int node, uint64_t incarnation,
                           const Schema& schema, const Membership& membership, NodeAgent& agent,
                           SimRunner& runner, const std::shared_ptr<const ClusterState>& cache,
                           const int64_t& lease_expires_ms, bool watchdog_recovering)
    : clock_(clock),
      world_(world),
      node_(node),
      incarnation_(incarnation),
      schema_(schema),
      self_(world.config().nodes[node]),
      membership_(membership),
      agent_(agent),
      runner_(runner),
      cache_(cache),
      lease_expires_ms_(lease_expires_ms),
      watchdog_recovering_(watchdog_recovering) {}

void SimAgentLoop::run_if_due() {
  if (posted_.empty() && !woken_ && clock_.mono_ms() < wake_ms_ && !runner_.has_completions())
    return;
  // EventLoop::wait: the wake-up is consumed, then the posted results run
  // (on_written may wake the loop again: its next wait returns at once).
  woken_ = false;
  run_posted();
  iterate();
  if (woken_) {
    woken_ = false;
    run_posted();
    iterate();
  }
}

void SimAgentLoop::run_posted() {
  // Bounded: one write is in flight at a time, so at most one result waits.
  while (!posted_.empty()) {
    const Written w = std::move(posted_.front());
    posted_.pop_front();
    on_written(w.write, w.error);
  }
}

const AgentView& SimAgentLoop::build_view() {
  const ClusterState& state = state_ ? *state_ : empty_state();
  if (view_state_ != &state) {
    view_state_ = &state;
    view_.store_loaded = state.loaded && state.schema_version > 0;
    view_.config = state.resource_config;
    view_.config_unreadable =
        state.resources_unreadable || (state.resources.has_value() && !state.resource_config);
    view_.placement = state.placement;
    view_.directives = state.directives;
    view_.node_mode = NodeMode::kOnline;
    if (auto n = state.nodes.find(self_); n != state.nodes.end()) view_.node_mode = n->second.mode;
    view_.statuses = &state.statuses;
    view_.nodes.clear();
    view_.maintenance_nodes.clear();
    for (const auto& [name, node] : state.nodes) {
      view_.nodes.push_back(name);
      if (node.mode == NodeMode::kMaintenance) view_.maintenance_nodes.insert(name);
    }
  }
  const int64_t now = clock_.mono_ms();
  view_.holds_lease = lease_expires_ms_ > now;
  view_.lease_remaining_ms = !view_.holds_lease ? 0
                             : lease_expires_ms_ == std::numeric_limits<int64_t>::max()
                                 ? world_.config().lease_ms
                                 : lease_expires_ms_ - now;
  // Reachability only every few turns: a peer seen late as unreachable
  // only makes an announcing agent wait longer (bounded).
  if (turns_++ % 16 == 0) {
    const MembershipView m = membership_.view();
    BW_CHECK(m.holds_lease == view_.holds_lease && m.lease_remaining_ms == view_.lease_remaining_ms,
             "the cached lease must be what Membership::view() says");
    view_.unreachable.clear();
    for (const MemberStatus& member : m.members) {
      if (!member.self && !member.online) view_.unreachable.insert(member.name);
    }
  }
  return view_;
}

NodeStatusRecord SimAgentLoop::stamped(NodeStatusRecord rec) const {
  rec.incarnation = incarnation_;  // what membership_.view() says of self
  return rec;
}

void SimAgentLoop::iterate() {
  if (cache_ && cache_->revision != seen_revision_) {
    state_ = cache_;
    seen_revision_ = cache_->revision;
  }
  runner_.tick();
  for (const auto& c : runner_.take_completions()) agent_.on_completion(c);
  const AgentView& view = build_view();
  agent_.step(view);
  feed_watchdog(view);
  if (auto rev = agent_.wants_claim()) claim(*rev);
  publish();
  wait();
}

void SimAgentLoop::feed_watchdog(const AgentView& view) {
  // AgentService::feed_watchdog: fed while the node holds its lease or runs
  // nothing exclusive; before every resource was probed, only when no
  // earlier daemon of this boot left it armed.
  // After a crash, the device is opened (a keepalive) only once every
  // resource is probed and feeding is allowed.
  if (world_.config().watchdog_ms <= 0) return;
  const bool may_feed = view.holds_lease || !agent_.exclusive_active();
  if (watchdog_recovering_ && !watchdog_armed_) {
    if (!agent_.probed() || !may_feed) return;
    watchdog_armed_ = true;
    world_.feed_watchdog(node_);
    return;
  }
  if (!agent_.probed() ? watchdog_recovering_ : !may_feed) return;
  world_.feed_watchdog(node_);
}

void SimAgentLoop::claim(int64_t placement_revision) {
  // AgentService::claim: a claim refused once is not tried again; none
  // before every resource was probed, nor while a write is in flight.
  if (placement_revision == refused_claim_ || write_in_flight_ || !agent_.probed()) return;
  Write w;
  w.record = stamped(agent_.begin_claim());
  w.encoded = Schema::encode_status(w.record);
  w.claim = placement_revision;
  submit(std::move(w));
}

void SimAgentLoop::publish() {
  // AgentService::publish. Until every resource was probed, the record of
  // the previous daemon stays.
  if (!agent_.probed() || write_in_flight_) return;
  const int64_t now = clock_.mono_ms();
  if (now - published_mono_ms_ < kPublishMinMs) return;
  // AgentService compares the encoded record; the encoding is a function of
  // these fields, and comparing them first spares a JSON encoding per turn.
  NodeStatusRecord rec = stamped(agent_.status());
  if (published_record_ && rec.probed == published_record_->probed &&
      rec.incarnation == published_record_->incarnation &&
      rec.voided == published_record_->voided && rec.resources == published_record_->resources)
    return;
  std::string encoded = Schema::encode_status(rec);
  if (encoded == published_) {
    published_record_ = std::move(rec);
    return;
  }
  submit(Write{std::move(rec), std::move(encoded), std::nullopt});
}

void SimAgentLoop::submit(Write write) {
  // AgentService::submit and run_writer: the writer takes the job at once
  // and waits for the store (Store::put_status) while the loop runs on; the
  // result is posted to the loop. A daemon that dies drops it (the world
  // delivers a reply only to the life that made the call).
  write_in_flight_ = true;
  written_since_ms_ = clock_.mono_ms();
  StoreRequest req;
  if (write.claim)
    req.compares.push_back(Compare::mod_revision(schema_.placement_key(), *write.claim));
  req.ops.push_back(TxnOp::put(schema_.status_key(self_), write.encoded));
  req.what = (write.claim ? "claim on placement revision " + std::to_string(*write.claim)
                          : "publish status") +
             " {" + summary(write.record) + "}";
  world_.store_call(
      node_, incarnation_, std::move(req), [this, write = std::move(write)](const StoreReply& r) {
        std::optional<Error> error = r.error;
        if (!error && !r.txn.succeeded)
          error = make_error(Errc::kConflict, "the placement changed before the claim");
        BW_CHECK(posted_.empty(), "one status write at a time");
        posted_.push_back(Written{write, error});
      });
}

void SimAgentLoop::on_written(const Write& write, const std::optional<Error>& error) {
  write_in_flight_ = false;
  const int64_t now = clock_.mono_ms();
  if (write.claim) {
    if (error) {
      if (error->code == Errc::kConflict) refused_claim_ = *write.claim;
      agent_.on_claim_failed();
      return;
    }
    agent_.on_claimed(*write.claim);
  } else if (error) {
    published_mono_ms_ = now;  // retried after the period, not in a tight loop
    return;
  }
  published_ = write.encoded;
  published_record_ = write.record;
  published_mono_ms_ = now;
  woken_ = true;  // a claim let starts go ahead: step at once
}

void SimAgentLoop::wait() {
  const int64_t now = clock_.mono_ms();
  wake_ms_ = std::min({agent_.next_due_ms(), runner_.next_deadline_ms(), now + kPollMs});
}

}  // namespace bulwark::sim
