#include "sim/sim_io.h"

#include <sstream>

#include "core/check.h"
#include "sim/sim_node.h"

namespace bulwark::sim {
namespace {

thread_local SimThread* t_thread = nullptr;

// "probed vip:starting volume:stopped ..." for the trace.
std::string summary(const NodeStatusRecord& rec) {
  std::string out = rec.probed ? "probed" : "unprobed";
  for (const auto& [name, st] : rec.resources) {
    if (st.state == InstanceState::kStopped && !st.promoted) continue;
    out += " " + name + ":" + instance_state_name(st.state) + (st.promoted ? "(promoted)" : "");
  }
  return out;
}

std::string describe(const std::vector<Compare>& compares, const std::vector<TxnOp>& ops) {
  std::string out = "txn";
  if (!compares.empty()) out += " (" + std::to_string(compares.size()) + " compares)";
  for (const TxnOp& op : ops) {
    out += (op.kind == TxnOp::Kind::kPut ? " put " : " delete ") + op.key;
    if (op.kind != TxnOp::Kind::kPut || op.key.find("/status/") == std::string::npos) continue;
    if (auto rec = Schema::decode_status(op.value)) out += " {" + summary(*rec) + "}";
  }
  return out;
}

const ClusterState& empty_state() {
  static const ClusterState kEmpty;
  return kEmpty;
}

}  // namespace

SimThread::SimThread(std::function<void()> body) : fiber_(std::move(body)) {}

void SimThread::run_if_ready() {
  for (int resumes = 0; resumes < 2; ++resumes) {
    if (fiber_.finished() || (ready_ && !ready_())) return;
    ready_ = nullptr;
    SimThread* outer = t_thread;
    t_thread = this;
    fiber_.resume();
    t_thread = outer;
  }
}

void SimThread::block_until(std::function<bool()> ready) {
  BW_CHECK(t_thread != nullptr, "a simulated call outside a simulated thread");
  t_thread->ready_ = std::move(ready);
  Fiber::wait();
}

void SimClock::sleep_ms(int64_t ms) const {
  const int64_t until = mono_ms() + ms;
  SimThread::block_until([this, until] { return mono_ms() >= until; });
}

StoreReply SimKv::call(StoreRequest request) {
  auto reply = std::make_shared<std::optional<StoreReply>>();
  world_.store_call(node_, incarnation_, std::move(request),
                    [reply](const StoreReply& r) { *reply = r; });
  SimThread::block_until([reply] { return reply->has_value(); });
  return std::move(**reply);
}

Result<RangeResult> SimKv::get(const std::string& key, bool prefix, int timeout_ms) {
  BW_CHECK(!prefix, "the simulated store reads single keys");
  StoreRequest req;
  req.read_key = key;
  req.timeout_ms = timeout_ms;
  req.what = "get " + key;
  StoreReply r = call(std::move(req));
  if (r.error) return *r.error;
  return std::move(r.range);
}

Result<TxnResult> SimKv::txn(const std::vector<Compare>& compares,
                             const std::vector<TxnOp>& success, const std::vector<TxnOp>& failure,
                             int timeout_ms) {
  BW_CHECK(failure.empty(), "the simulated store runs no failure branch");
  StoreRequest req;
  req.compares = compares;
  req.ops = success;
  req.timeout_ms = timeout_ms;
  req.what = describe(compares, success);
  StoreReply r = call(std::move(req));
  if (r.error) return *r.error;
  return r.txn;
}

bool SimCacheWait::wait_for_revision(int64_t revision, int timeout_ms) {
  const int64_t until = clock_.mono_ms() + timeout_ms;
  SimThread::block_until([this, revision, until] {
    return cache_revision_() >= revision || clock_.mono_ms() >= until;
  });
  return cache_revision_() >= revision;
}

Result<int64_t> SimFenceLauncher::launch(const std::vector<std::string>&,
                                         const std::string& options) {
  std::istringstream in(options);
  std::string line, target;
  while (std::getline(in, line)) {
    if (line.rfind("plug=", 0) == 0) target = line.substr(5);
  }
  if (target.empty()) return make_error(Errc::kInvalid, "no plug= option");
  return static_cast<int64_t>(world_.begin_fence(node_, incarnation_, target));
}

std::optional<int> SimFenceLauncher::reap(int64_t call) {
  switch (world_.fence_state(static_cast<uint64_t>(call))) {
    case FenceState::kPending:
      return std::nullopt;
    case FenceState::kOff:
      return 0;
    case FenceState::kFailed:
      break;
  }
  return 1 << 8;  // exit status 1
}

void SimFenceLauncher::kill(int64_t) {
  // A call past its deadline: whatever the device does, it does.
}

void SimAgentIo::submit(StatusJob job) {
  BW_CHECK(!job_ && !posted_, "one status write at a time");
  job_ = std::move(job);
  submitted_ms_ = clock_.mono_ms();
}

Status SimAgentIo::arm_watchdog() {
  watchdog_armed_ = true;
  world_.feed_watchdog(node_);
  return Ok{};
}

Status SimAgentIo::feed_watchdog() {
  world_.feed_watchdog(node_);
  return Ok{};
}

void SimAgentIo::run_writer(StoreWrites& writes, const std::string& node) {
  while (true) {
    SimThread::block_until([this] { return job_.has_value(); });
    StatusJob job = std::move(*job_);
    job_.reset();
    auto result = writes.put_status(node, job.record, job.claim, job.record_revision);
    posted_ = Posted{std::move(job), std::move(result)};
  }
}

void SimAgentIo::run_agent(AgentLoop& loop, const std::shared_ptr<const ClusterState>& cache,
                           const std::function<bool()>& has_completions) {
  while (true) {
    // EventLoop::wait: the wake-up is consumed, then what was posted runs
    // (on_written may wake the loop again: its next wait ends at once).
    woken_ = false;
    if (posted_) {
      const Posted p = std::move(*posted_);
      posted_.reset();
      loop.on_written(p.job, p.result);
    }
    // A turn never blocks, so the cache cannot change under it.
    const int64_t due = loop.turn(cache ? *cache : empty_state());
    SimThread::block_until([this, due, &has_completions] {
      return woken_ || posted_.has_value() || clock_.mono_ms() >= due || has_completions();
    });
  }
}

}  // namespace bulwark::sim
