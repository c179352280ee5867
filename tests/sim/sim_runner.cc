#include "sim/sim_runner.h"

#include <limits>

namespace bulwark::sim {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

}  // namespace

int64_t SimRunner::delay_ms(const OpRequest& r) {
  Rng& rng = world_.rng();
  int64_t lo = 5, hi = r.kind == OpKind::kMonitor || r.kind == OpKind::kProbe ? 30 : 60;
  if (exec(r)) {
    // ExecRunner answers an exec probe, start (without a check) and
    // monitor within begin(); what takes time is a process exiting after
    // SIGTERM.
    lo = 0;
    hi = r.kind == OpKind::kStop ? 30 : 1;
  }
  // Now and then much slower (a loaded machine).
  return rng.chance(20) ? rng.range(hi, 5 * hi) : rng.range(lo, hi);
}

uint64_t SimRunner::schedule(int64_t after_ms, const Op& op, EffectKind kind,
                             const std::string& why) {
  return world_.processes().schedule(world_.now_ms() + after_ms, node_, op.request.vars.resource,
                                     op.life, kind, why);
}

void SimRunner::begin(const OpRequest& request) {
  Op& op = ops_[request.id];
  op.request = request;
  op.deadline_ms = clock_.mono_ms() + request.timeout_ms;
  op.life = world_.processes().get(node_, request.vars.resource).life;
  if (exec(request)) {
    begin_exec(op);
  } else {
    begin_ocf(op);
  }
}

void SimRunner::begin_exec(Op& op) {
  const OpRequest& r = op.request;
  const std::string& res = r.vars.resource;
  Processes& procs = world_.processes();
  const int64_t d = delay_ms(r);
  op.done_ms = clock_.mono_ms() + d;
  switch (r.kind) {
    case OpKind::kProbe:
    case OpKind::kMonitor:
      return;  // answered at done_ms from what runs then
    case OpKind::kStart:
      op.life =
          procs.spawn(node_, res, world_.now_ms(), RunningDefinition{r.spec, r.restart_generation});
      watched_.insert(res);
      if (world_.inject(node_, res, OpFault::kStartFails)) {
        // It crashes while starting or right after: either way its exit is
        // what the agent hears of.
        schedule(world_.rng().range(0, 2 * d), op, EffectKind::kExit, "crashed on start");
      }
      return;
    case OpKind::kStop:
      if (!watched_.count(res) || !procs.get(node_, res).running) {
        op.done_ms = clock_.mono_ms();  // "not running", at once
        return;
      }
      op.done_ms = kNever;  // ends with the exit (on_exit) or at the deadline (tick)
      if (!world_.inject(node_, res, OpFault::kStopHangs))
        op.effect = schedule(d, op, EffectKind::kExit, "stopped");
      return;
    case OpKind::kPromote:
    case OpKind::kDemote:
    case OpKind::kNotify:
    case OpKind::kReload:
      op.outcome = OpOutcome::kFailed;
      return;
  }
}

void SimRunner::begin_ocf(Op& op) {
  const OpRequest& r = op.request;
  const std::string& res = r.vars.resource;
  Processes& procs = world_.processes();
  const int64_t d = delay_ms(r);
  op.done_ms = clock_.mono_ms() + d;
  switch (r.kind) {
    case OpKind::kProbe:
    case OpKind::kMonitor:
      return;
    case OpKind::kStart:
      // The daemon exists from the moment the script launches it.
      op.life =
          procs.spawn(node_, res, world_.now_ms(), RunningDefinition{r.spec, r.restart_generation});
      if (world_.inject(node_, res, OpFault::kStartFails)) {
        op.outcome = OpOutcome::kFailed;
        op.effect = schedule(d, op, EffectKind::kExit, "start failed");
      }
      return;
    case OpKind::kStop:
      op.effect = schedule(d, op, EffectKind::kExit, "stopped");
      return;
    case OpKind::kPromote:
      if (!procs.get(node_, res).running) {
        op.outcome = OpOutcome::kNotRunning;
        return;
      }
      // Counted as promoted from the moment promotion may have begun.
      procs.promote(node_, res, op.life);
      if (world_.inject(node_, res, OpFault::kPromoteFails)) {
        op.outcome = OpOutcome::kFailed;
        op.effect = schedule(d, op, EffectKind::kDemote, "promote failed");
      }
      return;
    case OpKind::kDemote:
      op.effect = schedule(d, op, EffectKind::kDemote, "demoted");
      return;
    case OpKind::kNotify:
    case OpKind::kReload:
      return;  // it only tells the agent: answered ok at done_ms
  }
}

OpOutcome SimRunner::observe(const OpRequest& r) const {
  const Instance& i = world_.processes().get(node_, r.vars.resource);
  if (!i.running) return OpOutcome::kNotRunning;
  if (exec(r)) return OpOutcome::kOk;
  return i.promoted ? OpOutcome::kRunningPromoted : OpOutcome::kOk;
}

void SimRunner::poll() {
  const int64_t now = clock_.mono_ms();
  std::vector<uint64_t> due;
  for (const auto& [id, op] : ops_) {
    if (op.done_ms <= now) due.push_back(id);
  }
  for (const uint64_t id : due) {
    const Op& op = ops_.at(id);
    const OpRequest& r = op.request;
    if (r.kind == OpKind::kProbe || r.kind == OpKind::kMonitor) {
      const OpOutcome o = observe(r);
      if (r.kind == OpKind::kProbe && o != OpOutcome::kNotRunning && exec(r))
        watched_.insert(r.vars.resource);  // adopted
      complete(id, o, "");
      continue;
    }
    complete(id, op.outcome, op.outcome == OpOutcome::kOk ? "" : "injected failure");
  }
}

void SimRunner::tick() {
  const int64_t now = clock_.mono_ms();
  std::vector<uint64_t> late;
  for (const auto& [id, op] : ops_) {
    if (op.deadline_ms <= now) late.push_back(id);
  }
  for (const uint64_t id : late) {
    auto it = ops_.find(id);
    if (it == ops_.end()) continue;  // completed by an exit meanwhile
    Op& op = it->second;
    const OpRequest& r = op.request;
    if (exec(r) && r.kind == OpKind::kStop) {
      // SIGKILL: the process is gone at once, and its exit completes the stop.
      world_.trace().add(r.vars.node, r.vars.resource + " did not stop in time: SIGKILL");
      world_.processes().kill(node_, r.vars.resource, op.life, "SIGKILL at the stop timeout");
      if (ops_.count(id)) complete(id, OpOutcome::kOk, "killed at the stop timeout");
      continue;
    }
    // A script past its deadline is killed before it did what it was for.
    if (op.effect != 0) world_.processes().cancel(op.effect);
    complete(id, OpOutcome::kTimeout, "killed after " + std::to_string(r.timeout_ms) + " ms");
  }
}

std::optional<RunningDefinition> SimRunner::recorded(const std::string& resource) const {
  const Instance& i = world_.processes().get(node_, resource);
  if (!i.running) return std::nullopt;
  return i.definition;
}

void SimRunner::cancel(uint64_t id) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  if (it->second.effect != 0) world_.processes().cancel(it->second.effect);
  ops_.erase(it);
}

void SimRunner::on_exit(const std::string& resource) {
  if (!watched_.erase(resource)) return;
  std::vector<uint64_t> waiting;
  bool stopping = false;
  for (const auto& [id, op] : ops_) {
    if (op.request.vars.resource != resource) continue;
    waiting.push_back(id);
    stopping = stopping || op.request.kind == OpKind::kStop;
  }
  for (const uint64_t id : waiting) {
    const bool stop = ops_.at(id).request.kind == OpKind::kStop;
    complete(id, stop ? OpOutcome::kOk : OpOutcome::kFailed, "the process exited");
  }
  if (!stopping)
    completions_.push_back(OpCompletion{.id = 0,
                                        .resource = resource,
                                        .kind = OpKind::kMonitor,
                                        .outcome = OpOutcome::kNotRunning,
                                        .detail = "the process exited"});
}

void SimRunner::complete(uint64_t id, OpOutcome outcome, const std::string& detail) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  const OpRequest& r = it->second.request;
  completions_.push_back(OpCompletion{
      .id = id, .resource = r.vars.resource, .kind = r.kind, .outcome = outcome, .detail = detail});
  ops_.erase(it);
}

std::vector<OpCompletion> SimRunner::take_completions() {
  std::vector<OpCompletion> out;
  out.swap(completions_);
  return out;
}

int64_t SimRunner::next_deadline_ms() const {
  int64_t next = kNever;
  for (const auto& [id, op] : ops_) next = std::min(next, op.deadline_ms);
  return next;
}

}  // namespace bulwark::sim
