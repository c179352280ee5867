#include "agent/agent_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace bulwark {
namespace {

// How often the loop looks at the store and the lease when no operation
// wakes it: bounds how late a new placement or a lost lease is acted on.
constexpr int64_t kPollMs = 10;
// Status writes are batched: at most one per this period, except claims.
constexpr int64_t kPublishMinMs = 50;

}  // namespace

AgentLoop::AgentLoop(const Clock& clock, NodeAgent& agent, OperationRunner& runner, AgentLoopIo& io,
                     std::string node)
    : clock_(clock), agent_(agent), runner_(runner), io_(io), node_(std::move(node)) {}

int64_t AgentLoop::turn(const ClusterState& state) {
  if (state.revision != seen_revision_) {
    seen_revision_ = state.revision;
    if (state.loaded) {
      // The version of our record the store shows: what a write replaces.
      auto own = state.statuses.find(node_);
      record_revision_ =
          std::max(record_revision_, own == state.statuses.end() ? 0 : own->second.mod_revision);
    }
  }
  runner_.tick();
  for (const auto& c : runner_.take_completions()) agent_.on_completion(c);
  const AgentView& view = build_view(state);
  agent_.step(view);
  io_.after_step(state, agent_);
  feed_watchdog(view);
  if (auto rev = agent_.wants_claim()) claim(*rev);
  publish(state);
  return std::min({agent_.next_due_ms(), runner_.next_deadline_ms(), clock_.mono_ms() + kPollMs});
}

const AgentView& AgentLoop::build_view(const ClusterState& state) {
  // What comes from the store is rebuilt only when the store changed: the
  // loop turns every few milliseconds, the state changes far less often.
  if (!view_built_ || state.revision != view_revision_) {
    view_built_ = true;
    view_revision_ = state.revision;
    view_.store_loaded = state.loaded && state.schema_version > 0;
    view_.config = state.resource_config;
    view_.config_unreadable =
        state.resources_unreadable || (state.resources.has_value() && !state.resource_config);
    view_.placement = state.placement;
    view_.directives = state.directives;
    view_.node_mode = NodeMode::kOnline;
    if (auto n = state.nodes.find(node_); n != state.nodes.end()) view_.node_mode = n->second.mode;
    view_.nodes.clear();
    view_.maintenance_nodes.clear();
    for (const auto& [name, node] : state.nodes) {
      view_.nodes.push_back(name);
      if (node.mode == NodeMode::kMaintenance) view_.maintenance_nodes.insert(name);
    }
  }
  view_.statuses = &state.statuses;
  const MembershipView m = io_.membership();
  if (const MemberStatus* self = m.find(node_)) incarnation_ = self->incarnation;
  view_.holds_lease = m.holds_lease;
  view_.lease_remaining_ms = m.lease_remaining_ms;
  view_.unreachable.clear();
  for (const MemberStatus& member : m.members) {
    if (!member.self && !member.online) view_.unreachable.insert(member.name);
  }
  return view_;
}

void AgentLoop::claim(int64_t placement_revision) {
  // Only once every resource was probed: a claim's record is what this
  // node runs, and an unprobed instance is missing from it.
  if (placement_revision == refused_claim_ || write_in_flight_ || !agent_.probed()) return;
  submit(StatusJob{stamped(agent_.begin_claim()), placement_revision});
}

void AgentLoop::publish(const ClusterState& state) {
  // Until every resource was probed, the record from before this daemon
  // started stays: it is a better guess of what runs here than nothing,
  // and its incarnation tells the coordinator it is only a guess.
  if (!agent_.probed() || write_in_flight_) return;
  const int64_t now = clock_.mono_ms();
  if (now - published_mono_ms_ < kPublishMinMs) return;
  NodeStatusRecord rec = stamped(agent_.status());
  // Someone else wrote this node's record after our last write: a write of
  // an earlier life of this daemon that the network delivered late (a TCP
  // stream a partition held up), or the coordinator's voiding. What this
  // daemon knows now is written again.
  bool overwritten = false;
  if (auto it = state.statuses.find(node_);
      it != state.statuses.end() && it->second.mod_revision > published_revision_) {
    overwritten = Schema::encode_status(it->second) != published_;
    if (overwritten)
      spdlog::warn("agent: this node's status record was overwritten (revision {}); rewriting it",
                   it->second.mod_revision);
  }
  // The record encodes the same when its fields are the same: compared
  // first, which spares a JSON encoding on most turns.
  if (!overwritten && published_record_ && rec == *published_record_) return;
  if (!overwritten && Schema::encode_status(rec) == published_) {
    published_record_ = std::move(rec);
    return;
  }
  submit(StatusJob{std::move(rec), std::nullopt});
}

void AgentLoop::submit(StatusJob job) {
  write_in_flight_ = true;
  job.record_revision = std::max<int64_t>(record_revision_, 0);
  io_.submit(std::move(job));
}

void AgentLoop::on_written(const StatusJob& job, const Result<StoreWrites::StatusWrite>& result) {
  write_in_flight_ = false;
  const int64_t now = clock_.mono_ms();
  if (result && !result->committed) {
    // The record moved under us (the coordinator voided it, or a late write
    // of an earlier life landed): written again at once, over that version.
    record_revision_ = std::max(record_revision_, result->record_revision);
    published_.clear();
    published_record_.reset();
    spdlog::info(
        "agent: this node's status record changed in the store (revision {}); "
        "writing it again",
        result->record_revision);
    if (job.claim) agent_.on_claim_failed();
    io_.wake();
    return;
  }
  if (job.claim) {
    if (!result) {
      if (result.error().code == Errc::kConflict) refused_claim_ = *job.claim;
      spdlog::info("agent: claim on placement revision {} not made: {}", *job.claim,
                   result.error().message);
      agent_.on_claim_failed();
      return;
    }
    agent_.on_claimed(*job.claim);
  } else if (!result) {
    spdlog::warn("agent: cannot publish this node's status: {}", result.error().message);
    published_mono_ms_ = now;  // retried after the period, not in a tight loop
    write_error_ = result.error().message;
    return;
  }
  published_ = Schema::encode_status(job.record);
  published_record_ = job.record;
  published_revision_ = result->revision;
  record_revision_ = std::max(record_revision_, result->revision);
  published_mono_ms_ = now;
  if (committed_mono_ms_ < 0)
    spdlog::info("agent: this node's status published (store revision {})", result->revision);
  committed_mono_ms_ = now;
  write_error_.clear();
  io_.wake();  // a claim let starts go ahead: step at once
}

std::optional<StatusJob> AgentLoop::final_record() const {
  if (!agent_.probed() || write_in_flight_) return std::nullopt;
  NodeStatusRecord rec = stamped(agent_.status());
  if (Schema::encode_status(rec) == published_) return std::nullopt;
  return StatusJob{std::move(rec), std::nullopt, std::max<int64_t>(record_revision_, 0)};
}

NodeStatusRecord AgentLoop::stamped(NodeStatusRecord rec) const {
  rec.incarnation = incarnation_;
  return rec;
}

void AgentLoop::feed_watchdog(const AgentView& view) {
  // Fed while the node may run exclusive resources (it holds its lease), or
  // runs none. A node that lost its lease and could not stop them is reset
  // within the timeout; so is a node whose bulwarkd hangs or died.
  if (!io_.watchdog_configured()) return;
  const bool may_feed = view.holds_lease || !agent_.exclusive_active();
  if (!io_.watchdog_armed()) {
    // After a crash: opened (which feeds it) only once every resource is
    // probed and feeding is allowed; until then the old countdown runs.
    if (!watchdog_recovering_ || !agent_.probed() || !may_feed) return;
    if (auto st = io_.arm_watchdog(); !st) spdlog::error("agent: {}", st.error().message);
    return;
  }
  if (!agent_.probed() ? watchdog_recovering_ : !may_feed) return;
  if (auto st = io_.feed_watchdog(); !st) spdlog::error("agent: {}", st.error().message);
}

}  // namespace bulwark
