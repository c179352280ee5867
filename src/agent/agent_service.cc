#include "agent/agent_service.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "sys/process.h"

namespace bulwark {
namespace {

constexpr uint64_t kSignalTag = 1;
// How often the loop looks at the store and the lease when no operation
// wakes it: bounds how late a new placement or a lost lease is acted on.
constexpr int64_t kPollMs = 10;
// Status writes are batched: at most one per this period, except claims.
constexpr int64_t kPublishMinMs = 50;
// At shutdown, how long the final status waits for a write in flight.
constexpr int64_t kFinalWriteWaitMs = 2000;

}  // namespace

AgentService::AgentService(const Clock& clock, Store& store, const MembershipService& membership,
                           AgentServiceOptions options)
    : clock_(clock),
      store_(store),
      membership_(membership),
      options_(std::move(options)),
      runner_(clock, loop_, options_.runner),
      agent_(clock, runner_, options_.agent),
      proxies_(clock, options_.runner.runtime_dir) {}

AgentService::~AgentService() {
  stop_ = true;
  loop_.wake();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(writer_mu_);
    writer_stop_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

Status AgentService::start() {
  if (!options_.watchdog.device.empty()) {
    // A marker in the runtime directory (emptied at boot) says an earlier
    // daemon of this boot armed the watchdog and never disarmed it: it
    // crashed, and what it ran exclusively may still run.
    const std::string marker = options_.runner.runtime_dir + "/watchdog.armed";
    watchdog_recovering_ = ::access(marker.c_str(), F_OK) == 0;
    if (watchdog_recovering_) {
      // Opening the device feeds it: the countdown the crashed daemon left
      // must run on until this one knows what runs (feed_watchdog).
      spdlog::warn(
          "agent: the watchdog was left armed by a crashed bulwarkd; it is opened only "
          "once every resource is probed");
    } else if (auto st = arm_watchdog(); !st) {
      return st;
    }
  }
  // SIGCHLD is blocked in every thread (the daemon blocks it before any
  // thread starts); the signalfd receives it.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  signal_fd_ = ::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) return make_error(Errc::kIo, "signalfd failed");
  if (auto st = loop_.add(signal_fd_, EPOLLIN, kSignalTag); !st) return st;
  writer_ = std::thread([this] { run_writer(); });
  thread_ = std::thread([this] { run(); });
  return Ok{};
}

void AgentService::run_writer() {
  while (true) {
    Write write;
    {
      std::unique_lock lock(writer_mu_);
      writer_cv_.wait(lock, [this] { return writer_stop_ || writer_job_.has_value(); });
      if (!writer_job_) return;  // stopping, nothing left to write
      write = std::move(*writer_job_);
      writer_job_.reset();
    }
    auto result = store_.writes().put_status(options_.agent.node, write.record, write.claim,
                                             write.record_revision);
    loop_.post([this, write = std::move(write), result = std::move(result)] {
      on_written(write, result);
    });
  }
}

void AgentService::submit(Write write) {
  write_in_flight_ = true;
  write.record_revision = std::max<int64_t>(record_revision_, 0);
  {
    std::lock_guard lock(writer_mu_);
    writer_job_ = std::move(write);
  }
  writer_cv_.notify_one();
}

void AgentService::on_written(const Write& write, const Result<StoreWrites::StatusWrite>& result) {
  write_in_flight_ = false;
  const int64_t now = clock_.mono_ms();
  if (result && !result->committed) {
    // The record moved under us (the coordinator voided it, or a late write
    // of an earlier life landed): written again at once, over that version.
    record_revision_ = std::max(record_revision_, result->record_revision);
    published_.clear();
    spdlog::info(
        "agent: this node's status record changed in the store (revision {}); "
        "writing it again",
        result->record_revision);
    if (write.claim) agent_.on_claim_failed();
    loop_.wake();
    return;
  }
  if (write.claim) {
    if (!result) {
      if (result.error().code == Errc::kConflict) refused_claim_ = *write.claim;
      spdlog::info("agent: claim on placement revision {} not made: {}", *write.claim,
                   result.error().message);
      agent_.on_claim_failed();
      return;
    }
    agent_.on_claimed(*write.claim);
  } else if (!result) {
    spdlog::warn("agent: cannot publish this node's status: {}", result.error().message);
    published_mono_ms_ = now;  // retried after the period, not in a tight loop
    {
      std::lock_guard lock(info_mu_);
      info_.write_error = result.error().message;
    }
    return;
  }
  published_ = Schema::encode_status(write.record);
  published_revision_ = result->revision;
  record_revision_ = std::max(record_revision_, result->revision);
  published_mono_ms_ = now;
  {
    std::lock_guard lock(info_mu_);
    if (committed_mono_ms_ < 0)
      spdlog::info("agent: this node's status published (store revision {})", result->revision);
    committed_mono_ms_ = now;
    info_.write_error.clear();
  }
  loop_.wake();  // a claim let starts go ahead: step at once
}

AgentService::Info AgentService::info() const {
  std::lock_guard lock(info_mu_);
  Info out = info_;
  const int64_t now = clock_.mono_ms();
  out.published_ago_ms = committed_mono_ms_ < 0 ? -1 : now - committed_mono_ms_;
  out.loop_ago_ms = info_.loop_ago_ms < 0 ? -1 : now - info_.loop_ago_ms;
  return out;
}

void AgentService::shutdown(int timeout_ms) {
  shutdown_deadline_ms_ = clock_.mono_ms() + timeout_ms;
  shutting_down_ = true;
  loop_.wake();
  if (thread_.joinable()) thread_.join();
}

AgentView AgentService::build_view(const ClusterState& state) const {
  AgentView v;
  v.store_loaded = state.loaded && state.schema_version > 0;
  v.config = state.resource_config;
  v.config_unreadable =
      state.resources_unreadable || (state.resources.has_value() && !state.resource_config);
  v.placement = state.placement;
  v.directives = state.directives;
  if (auto n = state.nodes.find(options_.agent.node); n != state.nodes.end())
    v.node_mode = n->second.mode;
  const MembershipView m = membership_.view();
  v.holds_lease = m.holds_lease;
  v.lease_remaining_ms = m.lease_remaining_ms;
  for (const auto& [name, node] : state.nodes) {
    v.nodes.push_back(name);
    if (node.mode == NodeMode::kMaintenance) v.maintenance_nodes.insert(name);
  }
  for (const MemberStatus& member : m.members) {
    if (!member.self && !member.online) v.unreachable.insert(member.name);
  }
  return v;
}

void AgentService::claim(int64_t placement_revision) {
  // Only once every resource was probed: a claim's record is what this
  // node runs, and an unprobed instance is missing from it.
  if (placement_revision == refused_claim_ || write_in_flight_ || !agent_.probed()) return;
  submit(Write{stamped(agent_.begin_claim()), placement_revision});
}

void AgentService::publish(const ClusterState& state) {
  // Until every resource was probed, the record from before this daemon
  // started stays: it is a better guess of what runs here than nothing,
  // and its incarnation tells the coordinator it is only a guess.
  if (!agent_.probed() || write_in_flight_) return;
  const int64_t now = clock_.mono_ms();
  if (now - published_mono_ms_ < kPublishMinMs) return;
  NodeStatusRecord rec = stamped(agent_.status());
  const std::string encoded = Schema::encode_status(rec);
  // Someone else wrote this node's record after our last write: a write of
  // an earlier life of this daemon that the network delivered late (a TCP
  // stream a partition held up), or the coordinator's voiding. What this
  // daemon knows now is written again.
  bool overwritten = false;
  if (auto it = state.statuses.find(options_.agent.node);
      it != state.statuses.end() && it->second.mod_revision > published_revision_) {
    overwritten = Schema::encode_status(it->second) != published_;
    if (overwritten)
      spdlog::warn("agent: this node's status record was overwritten (revision {}); rewriting it",
                   it->second.mod_revision);
  }
  if (encoded == published_ && !overwritten) return;
  submit(Write{std::move(rec), std::nullopt});
}

NodeStatusRecord AgentService::stamped(NodeStatusRecord rec) const {
  const MembershipView m = membership_.view();
  if (const MemberStatus* self = m.find(options_.agent.node)) rec.incarnation = self->incarnation;
  return rec;
}

Status AgentService::arm_watchdog() {
  if (auto st = watchdog_.open(options_.watchdog.device, options_.watchdog.timeout_ms); !st)
    return st;
  const std::string marker = options_.runner.runtime_dir + "/watchdog.armed";
  if (FILE* f = std::fopen(marker.c_str(), "w")) std::fclose(f);
  spdlog::info("agent: watchdog {} armed ({} ms)", options_.watchdog.device,
               watchdog_.timeout_ms());
  return Ok{};
}

void AgentService::feed_watchdog(const AgentView& view) {
  // Fed while the node may run exclusive resources (it holds its lease), or
  // runs none. A node that lost its lease and could not stop them is reset
  // within the timeout; so is a node whose bulwarkd hangs or died.
  if (options_.watchdog.device.empty()) return;
  const bool may_feed = view.holds_lease || !agent_.exclusive_active();
  if (!watchdog_.armed()) {
    // After a crash: opened (which feeds it) only once every resource is
    // probed and feeding is allowed; until then the old countdown runs.
    if (!watchdog_recovering_ || !agent_.probed() || !may_feed) return;
    if (auto st = arm_watchdog(); !st) spdlog::error("agent: {}", st.error().message);
    return;
  }
  if (!agent_.probed() ? watchdog_recovering_ : !may_feed) return;
  if (auto st = watchdog_.keepalive(); !st) spdlog::error("agent: {}", st.error().message);
}

void AgentService::finish_shutdown() {
  // The final record: after any write in flight (bounded), written directly.
  for (int waited = 0; write_in_flight_ && waited < kFinalWriteWaitMs; waited += kPollMs) {
    for (const epoll_event& ev : loop_.wait(static_cast<int>(kPollMs))) {
      if (ProcessRunner::owns(ev.data.u64)) runner_.on_event(ev.data.u64, ev.events);
    }
  }
  if (agent_.probed() && !write_in_flight_) {
    const NodeStatusRecord rec = stamped(agent_.status());
    if (Schema::encode_status(rec) != published_) {
      auto r = store_.writes().put_status(options_.agent.node, rec, std::nullopt,
                                          std::max<int64_t>(record_revision_, 0));
      if (!r) spdlog::warn("agent: cannot publish this node's final status: {}", r.error().message);
    }
  }
  // A clean end: nothing exclusive runs any more (or the deadline passed,
  // and then the countdown stays armed).
  if (!agent_.exclusive_active() && watchdog_.armed()) {
    watchdog_.disarm();
    ::unlink((options_.runner.runtime_dir + "/watchdog.armed").c_str());
  }
}

void AgentService::reap() {
  signalfd_siginfo info;
  while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
  }
  reap_orphans();
}

void AgentService::run() {
  int64_t seen_revision = -1;
  ClusterState state;
  bool shutdown_begun = false;
  while (!stop_) {
    if (const int64_t rev = store_.cache_info().revision; rev != seen_revision) {
      state = store_.state();
      seen_revision = rev;
      if (state.loaded) {
        // The version of our record the store shows: what a write replaces.
        auto own = state.statuses.find(options_.agent.node);
        record_revision_ =
            std::max(record_revision_, own == state.statuses.end() ? 0 : own->second.mod_revision);
      }
    }
    if (shutting_down_ && !shutdown_begun) {
      spdlog::info("agent: stopping every resource on this node");
      agent_.begin_shutdown();
      shutdown_begun = true;
    }
    runner_.tick();
    for (const auto& c : runner_.take_completions()) agent_.on_completion(c);
    AgentView view = build_view(state);
    view.statuses = &state.statuses;
    agent_.step(view);
    proxies_.sync(state, options_.agent.node, agent_.status());
    for (const ServerDrain& d : proxies_.take_drained())
      agent_.acknowledge(d.resource, d.node, d.seq);
    feed_watchdog(view);
    if (auto rev = agent_.wants_claim()) claim(*rev);
    publish(state);
    {
      std::lock_guard lock(info_mu_);
      info_.probed = agent_.probed();
      info_.write_in_flight = write_in_flight_;
      info_.loop_ago_ms = clock_.mono_ms();  // a stamp; info() turns it into an age
    }
    if (shutdown_begun && (agent_.idle() || clock_.mono_ms() >= shutdown_deadline_ms_)) {
      finish_shutdown();
      break;
    }
    const int64_t now = clock_.mono_ms();
    const int64_t due = std::min({agent_.next_due_ms(), runner_.next_deadline_ms(), now + kPollMs});
    for (const epoll_event& ev : loop_.wait(static_cast<int>(std::max<int64_t>(due - now, 0)))) {
      if (ev.data.u64 == kSignalTag) {
        reap();
      } else if (ProcessRunner::owns(ev.data.u64)) {
        runner_.on_event(ev.data.u64, ev.events);
      }
    }
  }
}

}  // namespace bulwark
