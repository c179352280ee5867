#include "agent/node_agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/check.h"

namespace bulwark {
namespace {

// With nothing scheduled, a step is still due this often (aging of
// failures, a lease that changed).
constexpr int64_t kIdleStepMs = 1000;

bool notified_kind(OpKind kind) {
  return kind == OpKind::kStart || kind == OpKind::kStop || kind == OpKind::kPromote ||
         kind == OpKind::kDemote;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

NodeAgent::NodeAgent(const Clock& clock, OperationRunner& runner, AgentOptions options)
    : clock_(clock), runner_(runner), options_(std::move(options)) {}

bool NodeAgent::runs(Phase phase) {
  return phase == Phase::kRunning || phase == Phase::kPromoting || phase == Phase::kPromoted ||
         phase == Phase::kDemoting;
}

bool NodeAgent::must_demote(const Instance& inst, const AgentView& view) const {
  return inst.maybe_promoted &&
         (!view.holds_lease || view.lease_remaining_ms <= options_.lease_guard_ms);
}

bool NodeAgent::exclusive_allowed(const AgentView& view) const {
  return view.holds_lease && view.lease_remaining_ms > options_.lease_guard_ms && !shutting_down_;
}

NodeStatusRecord NodeAgent::begin_claim() {
  claim_snapshot_ = claim_waiting_;
  return status();
}

void NodeAgent::on_claimed(int64_t placement_revision) {
  const auto announced = claim_snapshot_ ? *claim_snapshot_ : claim_waiting_;
  claim_snapshot_.reset();
  if (placement_revision < claimed_revision_) return;
  if (placement_revision > claimed_revision_) claimed_.clear();
  claimed_revision_ = placement_revision;
  for (const auto& [name, role] : announced) claimed_[name] = role;
  if (wants_claim_ && *wants_claim_ <= claimed_revision_) wants_claim_.reset();
}

bool NodeAgent::idle() const {
  return std::all_of(instances_.begin(), instances_.end(), [](const auto& e) {
    const Instance& i = e.second;
    return i.op_id == 0 && (i.left_alone || i.phase == Phase::kStopped ||
                            i.phase == Phase::kUnprobed || i.phase == Phase::kBlocked);
  });
}

bool NodeAgent::exclusive_active() const {
  return std::any_of(instances_.begin(), instances_.end(), [](const auto& e) {
    const Instance& i = e.second;
    if (i.left_alone) return false;
    if (i.maybe_promoted) return true;
    return i.spec.kind == ResourceKind::kSingleton && i.phase != Phase::kStopped &&
           i.phase != Phase::kUnprobed;
  });
}

void NodeAgent::refresh_config(const AgentView& view) {
  if (view.config == seen_config_) return;
  seen_config_ = view.config;
  if (!view.config) return;
  for (const auto& spec : view.config->resources) {
    auto [it, added] = instances_.try_emplace(spec.name);
    it->second.spec = spec;
    it->second.spec_fingerprint = run_fingerprint(spec);
    it->second.change_stale = true;
    it->second.proxy_sources_of.clear();
    if (added) {
      // Cleanups given before this daemon knew the resource are history:
      // they must not clear a failure that happens later.
      const auto gen = [&](const std::map<std::string, int64_t>& m) {
        auto g = m.find(spec.name);
        return g == m.end() ? int64_t{0} : g->second;
      };
      it->second.cleanup_generation = gen(view.directives.cleanups);
      it->second.forced_generation = gen(view.directives.forced_cleanups);
      spdlog::debug("agent: resource {} configured", spec.name);
    }
  }
  for (const auto& spec : view.config->resources) {
    for (const auto& source : spec.agent.proxy_sources) {
      if (auto it = instances_.find(source); it != instances_.end())
        it->second.proxy_sources_of.push_back(spec.name);
    }
  }
}

NodeAgent::Role NodeAgent::desired_role(const std::string& name, const Instance& inst,
                                        const AgentView& view) const {
  if (shutting_down_ || !view.config || !view.config->find(name)) return Role::kNone;
  Role role = Role::kNone;
  if (!view.placement) {
    // Nothing was ever placed: leave what runs alone until the coordinator
    // has spoken (it takes what runs into account).
    if (inst.phase == Phase::kPromoted) role = Role::kPromote;
    if (inst.phase == Phase::kRunning) role = Role::kRun;
  } else {
    const auto p = view.placement->resources.find(name);
    if (p != view.placement->resources.end()) {
      if (contains(p->second.promoted, options_.node)) {
        role = Role::kPromote;
      } else if (contains(p->second.nodes, options_.node)) {
        role = Role::kRun;
      }
    }
  }
  if (!exclusive_allowed(view)) {
    if (role == Role::kPromote) role = Role::kRun;
    if (role == Role::kRun && inst.spec.exclusive() && inst.spec.kind == ResourceKind::kSingleton)
      role = Role::kNone;
  }
  return role;
}

NodeAgent::Role NodeAgent::effective_role(const std::string& name, const Instance& inst,
                                          const AgentView& view) const {
  if (restarting_.count(name)) return Role::kNone;
  // The members after a restarting one in its group stop before it, and
  // start again after it.
  if (view.config) {
    for (const auto& g : view.config->groups) {
      const auto self = std::find(g.resources.begin(), g.resources.end(), name);
      if (self == g.resources.end()) continue;
      if (std::any_of(g.resources.begin(), self,
                      [&](const std::string& r) { return restarting_.count(r) != 0; }))
        return Role::kNone;
    }
  }
  return desired_role(name, inst, view);
}

bool NodeAgent::managed(const std::string& name, const AgentView& view) const {
  return !view.directives.maintenance && view.node_mode != NodeMode::kMaintenance &&
         !view.directives.unmanaged.count(name);
}

bool NodeAgent::needs_restart(const Instance& inst) const {
  return inst.running && (inst.change.effect == ChangeEffect::kRestart ||
                          inst.running_generation < inst.desired_generation);
}

bool NodeAgent::outdated(const Instance& inst) const {
  return needs_restart(inst) || (inst.running && inst.change.effect == ChangeEffect::kReload);
}

void NodeAgent::set_running(Instance& inst, std::optional<ResourceSpec> spec, int64_t generation) {
  inst.running = std::move(spec);
  inst.running_generation = generation;
  inst.running_fingerprint = inst.running ? run_fingerprint(*inst.running) : "";
  inst.change = inst.running ? compare_specs(*inst.running, inst.spec) : SpecChange{};
  inst.change_stale = false;
}

void NodeAgent::refresh_running(Instance& inst) {
  // Compared again only when the applied definition changed (set_running
  // compares when what runs changes): steps come every few ms.
  if (!inst.change_stale) return;
  inst.change_stale = false;
  inst.change = inst.running ? compare_specs(*inst.running, inst.spec) : SpecChange{};
  if (inst.change.effect != ChangeEffect::kUpdate) return;
  // Only what Bulwark itself uses changed: from now on it runs "as" the new
  // definition. A new monitor interval counts from now.
  if (inst.running->monitor.interval_ms != inst.spec.monitor.interval_ms)
    inst.next_monitor_ms =
        std::min(inst.next_monitor_ms, clock_.mono_ms() + inst.spec.monitor.interval_ms);
  spdlog::info("agent: {}: {} changed; applied without a restart", inst.spec.name,
               inst.change.describe());
  set_running(inst, inst.spec, inst.running_generation);
}

bool NodeAgent::restart_turn(const std::string& name, const Instance& inst,
                             const AgentView& view) const {
  if (inst.spec.kind == ResourceKind::kSingleton || !view.statuses) return true;
  const auto placed = [&](const std::string& node) {
    if (!view.placement) return false;
    auto p = view.placement->resources.find(name);
    return p != view.placement->resources.end() && contains(p->second.nodes, node);
  };
  // Promoted instances go last, the others by node name.
  const auto mine = std::make_pair(inst.maybe_promoted, options_.node);
  // Whether another instance is outdated is decided here, from what it
  // publishes it runs, never from its own say: all nodes then agree on who
  // is outdated, and so on whose turn it is, even before each has looked.
  const std::string& wanted = inst.spec_fingerprint;
  for (const auto& [node, rec] : *view.statuses) {
    if (node == options_.node || view.unreachable.count(node) || view.maintenance_nodes.count(node))
      continue;
    auto r = rec.resources.find(name);
    const InstanceStatus* st = r == rec.resources.end() ? nullptr : &r->second;
    // Not part of the clone there: neither placed nor running.
    if (!placed(node) && (!st || st->state == InstanceState::kStopped)) continue;
    // Blocked or left alone: it takes no turn, and waiting for it would
    // wait for ever.
    if (st && (st->state == InstanceState::kBlocked || st->unmanaged)) continue;
    const bool serving = st && instance_started(st->state) && !st->claim_pending;
    // A record without a definition is of a daemon that predates them.
    const bool current = st && (st->definition.empty() || st->definition == wanted) &&
                         st->restart_generation >= inst.desired_generation;
    if (serving && current) continue;
    if (serving && std::make_pair(st->promoted, node) > mine) continue;
    return false;  // it restarts, starts or stops now, or its turn comes first
  }
  return true;
}

std::vector<std::string> NodeAgent::members_of(const std::string& name,
                                               const AgentView& view) const {
  if (const GroupSpec* g = view.config->find_group(name)) return g->resources;
  return {name};
}

bool NodeAgent::predecessors_started(const std::string& name, const AgentView& view) const {
  const auto started_anywhere = [&](const std::string& other) {
    auto it = instances_.find(other);
    if (it != instances_.end() && runs(it->second.phase)) return true;
    if (!view.statuses) return false;
    return std::any_of(view.statuses->begin(), view.statuses->end(), [&](const auto& e) {
      auto r = e.second.resources.find(other);
      return r != e.second.resources.end() && instance_started(r->second.state);
    });
  };
  for (const auto& order : view.config->orders) {
    for (std::size_t i = 1; i < order.sequence.size(); ++i) {
      const auto mine = members_of(order.sequence[i], view);
      if (std::find(mine.begin(), mine.end(), name) == mine.end()) continue;
      // After a group: after every one of its members.
      for (const auto& before : members_of(order.sequence[i - 1], view)) {
        if (!started_anywhere(before)) return false;
      }
    }
  }
  for (const auto& g : view.config->groups) {
    for (std::size_t i = 1; i < g.resources.size(); ++i) {
      if (g.resources[i] != name) continue;
      // Group members share the node: the one before must run here.
      auto it = instances_.find(g.resources[i - 1]);
      if (it == instances_.end() || !runs(it->second.phase)) return false;
    }
  }
  return true;
}

bool NodeAgent::successors_stopped(const std::string& name, const AgentView& view) const {
  if (!view.config) return true;
  // A successor that is stopping here too stops first (reverse order); one
  // that stays running does not hold this stop up, nor does one left alone
  // (maintenance, unmanaged): it never stops, and an exclusive stop must
  // not wait past the lease for it.
  const auto stopping_after = [&](const std::string& other) {
    auto it = instances_.find(other);
    return it != instances_.end() && !it->second.left_alone &&
           (runs(it->second.phase) || it->second.op_id != 0) &&
           effective_role(other, it->second, view) == Role::kNone;
  };
  for (const auto& order : view.config->orders) {
    for (std::size_t i = 0; i + 1 < order.sequence.size(); ++i) {
      const auto mine = members_of(order.sequence[i], view);
      if (std::find(mine.begin(), mine.end(), name) == mine.end()) continue;
      for (const auto& after : members_of(order.sequence[i + 1], view)) {
        if (stopping_after(after)) return false;
      }
    }
  }
  for (const auto& g : view.config->groups) {
    for (std::size_t i = 0; i + 1 < g.resources.size(); ++i) {
      if (g.resources[i] == name && stopping_after(g.resources[i + 1])) return false;
    }
  }
  return true;
}

void NodeAgent::begin(const std::string& name, Instance& inst, OpKind kind, int timeout_ms) {
  // One operation at a time per instance, each from the phase it leaves.
  BW_ASSERT(inst.op_id == 0, "an instance runs one operation at a time");
  BW_ASSERT(kind != OpKind::kProbe || inst.phase == Phase::kUnprobed,
            "only an unknown state is probed");
  BW_ASSERT(kind != OpKind::kStart || inst.phase == Phase::kStopped, "a start begins from stopped");
  BW_ASSERT(kind != OpKind::kPromote || inst.phase == Phase::kRunning,
            "a promotion begins from running");
  BW_ASSERT(kind != OpKind::kDemote || inst.maybe_promoted,
            "only an instance that may be promoted is demoted");
  OpRequest req;
  req.id = next_op_id_++;
  req.kind = kind;
  // A start (or reload) brings the applied definition; everything else
  // acts on what runs, as it was started.
  const bool brings_spec = kind == OpKind::kStart || kind == OpKind::kReload;
  if (brings_spec) {
    set_running(inst, inst.spec, inst.desired_generation);
    inst.restart_logged = false;
  }
  if (kind == OpKind::kProbe) {
    // What may run is what was started: probed with the definition the
    // runner recorded, if any (an OCF agent may find its instance only with
    // the parameters it was started with).
    auto rec = runner_.recorded(name);
    if (rec) {
      set_running(inst, std::move(rec->spec), rec->restart_generation);
    } else {
      set_running(inst, std::nullopt, 0);
    }
  }
  req.spec = inst.running ? *inst.running : inst.spec;
  req.restart_generation = inst.running_generation;
  req.vars = InstanceVars::of(options_.node, options_.node_address, name);
  req.timeout_ms = std::max(timeout_ms, 1);
  req.clone_max = inst.spec.clone_max > 0 ? inst.spec.clone_max : cluster_size_;
  if (kind == OpKind::kNotify) req.notify = inst.notify.in_flight;
  inst.op_id = req.id;
  inst.op = kind;
  switch (kind) {
    case OpKind::kStart:
      inst.phase = Phase::kStarting;
      inst.exited = false;  // an exit reported from now on is this start's
      inst.recovery_demoted = false;
      break;
    case OpKind::kStop:
      inst.phase = Phase::kStopping;
      inst.stop_cut = req.timeout_ms < inst.spec.stop_timeout_ms;
      break;
    case OpKind::kPromote:
      inst.phase = Phase::kPromoting;
      inst.maybe_promoted = true;
      break;
    case OpKind::kDemote:
      inst.phase = Phase::kDemoting;
      break;
    case OpKind::kProbe:
    case OpKind::kMonitor:
    case OpKind::kNotify:
    case OpKind::kReload:
      break;
  }
  if (kind != OpKind::kMonitor && kind != OpKind::kNotify)
    spdlog::info("agent: {} {} ({} ms)", op_kind_name(kind), name, req.timeout_ms);
  runner_.begin(req);
}

void NodeAgent::fail(Instance& inst, const std::string& what) {
  ++inst.fail_count;
  inst.last_failure = what;
  inst.last_failure_mono_ms = clock_.mono_ms();
  inst.last_failure_wall_ms = clock_.wall_ms();
  inst.phase = Phase::kFailed;
  inst.exited = false;
  spdlog::warn("agent: {} failed ({} failures): {}", inst.spec.name, inst.fail_count, what);
}

int NodeAgent::exclusive_stop_ms(const Instance& inst, const AgentView& view) const {
  // An exclusive stop must be over before the lease can have expired on the
  // majority side: it is cut short (SIGKILL) at the lease's end.
  const int full = inst.spec.stop_timeout_ms;
  if (exclusive_allowed(view) || shutting_down_) return full;
  const ResourceSpec& runs_as = inst.running ? *inst.running : inst.spec;
  if (inst.spec.kind != ResourceKind::kSingleton && runs_as.kind != ResourceKind::kSingleton &&
      !inst.maybe_promoted)
    return full;
  // Only an exec resource's process can be ended by force (SIGKILL of its
  // group), and a VIP's removal takes no time: cutting an OCF or systemd
  // action short would leave the resource in an unknown state. Those run to
  // their timeout, and without fencing the coordinator waits for that too
  // (stop_allowance_ms in src/coordinator/placement_step.cc). What decides
  // is the definition it runs with.
  if (!runs_as.agent.stop_ends_with_lease()) return full;
  return static_cast<int>(std::clamp<int64_t>(lease_expires_mono_ms_ - clock_.mono_ms(), 1, full));
}

void NodeAgent::cut_short(const std::string& name, Instance& inst, const AgentView& view) {
  if (exclusive_allowed(view)) return;
  const bool exclusive_here =
      inst.maybe_promoted || (inst.spec.kind == ResourceKind::kSingleton && runs(inst.phase));
  if ((inst.op == OpKind::kMonitor || inst.op == OpKind::kNotify) && exclusive_here) {
    // Its stop or demotion must not wait for a monitor or a notification
    // (up to their timeouts): they only look, and are ended at once.
    runner_.cancel(inst.op_id);
    inst.op_id = 0;
    return;
  }
  const bool singleton_start =
      inst.op == OpKind::kStart && inst.spec.kind == ResourceKind::kSingleton;
  if (!singleton_start && inst.op != OpKind::kPromote) return;
  // A start or promotion may outlast the lease (start_timeout_ms, an exec
  // start retrying its check): end it, and undo what it may have done
  // within the lease.
  spdlog::warn("agent: lease lost while {} {} was under way; ending it", op_kind_name(inst.op),
               name);
  runner_.cancel(inst.op_id);
  inst.op_id = 0;
  if (singleton_start) {
    inst.phase = Phase::kRunning;  // it may be running: stopped below
    begin(name, inst, OpKind::kStop, exclusive_stop_ms(inst, view));
  } else {
    inst.phase = Phase::kPromoted;  // it may be promoted: demoted below
    if (inst.spec.notify) record_done(inst, OpKind::kPromote);
    begin(name, inst, OpKind::kDemote, exclusive_stop_ms(inst, view));
  }
}

void NodeAgent::step(const AgentView& view) {
  if (!view.store_loaded) return;
  refresh_config(view);
  const int64_t now = clock_.mono_ms();
  lease_expires_mono_ms_ = view.holds_lease ? now + view.lease_remaining_ms : now;
  // A claim covers one placement revision, and only while the lease holds:
  // after either changes, the placement may have moved on (after a lost
  // lease, without this node having seen it yet).
  if (!exclusive_allowed(view) ||
      (view.placement && view.placement->mod_revision != claimed_revision_)) {
    claimed_revision_ = 0;
    claimed_.clear();
  }
  wants_claim_.reset();
  claim_waiting_.clear();
  next_due_ms_ = now + kIdleStepMs;
  cluster_size_ = static_cast<int>(view.nodes.size());
  // Who takes a turn to restart now: decided for all first, because the
  // members after a restarting one in its group stop before it.
  restarting_.clear();
  for (auto& [name, inst] : instances_) {
    inst.left_alone = !managed(name, view);
    auto g = view.directives.restarts.find(name);
    inst.desired_generation = g == view.directives.restarts.end() ? 0 : g->second;
    refresh_running(inst);
    if (inst.left_alone || view.config_unreadable || shutting_down_ || !runs(inst.phase) ||
        !needs_restart(inst) || desired_role(name, inst, view) == Role::kNone)
      continue;
    if (!restart_turn(name, inst, view)) {
      next_due_ms_ = std::min(next_due_ms_, now + kIdleStepMs);
      continue;
    }
    if (!inst.restart_logged) {
      inst.restart_logged = true;
      spdlog::info("agent: restarting {}: {}", name,
                   inst.change.effect == ChangeEffect::kRestart
                       ? inst.change.describe() + " changed"
                       : std::string("bulwark resource restart"));
    }
    restarting_.insert(name);
  }
  for (auto& [name, inst] : instances_) {
    if (inst.op_id != 0 && !inst.left_alone) cut_short(name, inst, view);
    if (inst.op_id == 0 && inst.spec.notify && step_notify(name, inst, view)) continue;
    if (inst.op_id == 0) {
      inst.notify.pending_wanted = false;
      step_instance(name, inst, view);
      // An announced operation no longer wanted is withdrawn.
      if (inst.op_id == 0 && !inst.notify.pending_wanted) inst.notify.pending.reset();
    }
    // Monitors do not run in maintenance: their due times must not keep a
    // step due at once.
    if (runs(inst.phase) && inst.op_id == 0 && !inst.left_alone)
      next_due_ms_ = std::min(next_due_ms_, inst.next_monitor_ms);
  }
  // Instances of resources no longer in the file are forgotten once stopped.
  std::erase_if(instances_, [&](const auto& e) {
    return (!view.config || !view.config->find(e.first)) && e.second.op_id == 0 &&
           (e.second.phase == Phase::kStopped || e.second.phase == Phase::kUnprobed);
  });
  probed_ = view.config != nullptr &&
            std::none_of(instances_.begin(), instances_.end(),
                         [](const auto& e) { return e.second.phase == Phase::kUnprobed; });
}

void NodeAgent::step_instance(const std::string& name, Instance& inst, const AgentView& view) {
  const ResourceSpec& spec = inst.spec;
  const int64_t now = clock_.mono_ms();
  if (spec.failure_timeout_ms > 0 && inst.fail_count > 0) {
    if (now - inst.last_failure_mono_ms >= spec.failure_timeout_ms) {
      inst.fail_count = 0;
    } else {
      next_due_ms_ =
          std::min(next_due_ms_, inst.last_failure_mono_ms + int64_t{spec.failure_timeout_ms});
    }
  }
  if (auto f = view.directives.forced_cleanups.find(name);
      f != view.directives.forced_cleanups.end() && f->second > inst.forced_generation) {
    inst.forced_generation = f->second;
    if (inst.phase == Phase::kBlocked) {
      // The operator checked and says it is stopped (cleanup --force).
      spdlog::warn("agent: {}: its failed stop is cleared by the operator; counted as stopped",
                   name);
      inst.phase = Phase::kStopped;
      set_running(inst, std::nullopt, 0);
      inst.maybe_promoted = false;
      inst.recovery_demoted = false;
    }
  }
  if (auto c = view.directives.cleanups.find(name);
      c != view.directives.cleanups.end() && c->second > inst.cleanup_generation) {
    inst.cleanup_generation = c->second;
    inst.fail_count = 0;
    inst.last_failure.clear();
    inst.last_failure_wall_ms = 0;
    // A blocked instance is tried again: its stop may succeed now (after a
    // demotion again if it may still be promoted).
    if (inst.phase == Phase::kBlocked) {
      inst.phase = Phase::kFailed;
      inst.recovery_demoted = false;
    }
  }
  if (inst.phase == Phase::kUnprobed) {
    begin(name, inst, OpKind::kProbe, spec.monitor.timeout_ms);
    return;
  }
  // Left alone: nothing, not even at shutdown. An unreadable file holds
  // everything too, except at shutdown (its instances are not marked
  // unmanaged, so they stop as usual).
  if (inst.left_alone || (view.config_unreadable && !shutting_down_)) return;
  const Role role = effective_role(name, inst, view);
  const int stop_ms = exclusive_stop_ms(inst, view);
  const auto claimed = [&]() {
    if (view.placement && claimed_revision_ == view.placement->mod_revision) {
      auto c = claimed_.find(name);
      if (c != claimed_.end() && (c->second == role || c->second == Role::kPromote)) return true;
    }
    if (view.placement) {
      wants_claim_ = view.placement->mod_revision;
      claim_waiting_[name] = role;
    }
    return false;
  };
  if (inst.exited && runs(inst.phase)) fail(inst, "the process exited");
  switch (inst.phase) {
    case Phase::kStopped:
      if (role == Role::kNone || inst.fail_count >= spec.migration_threshold) return;
      if (!predecessors_started(name, view)) return;
      begin_announced(name, inst, OpKind::kStart, spec.start_timeout_ms, view,
                      spec.kind != ResourceKind::kSingleton || claimed());
      return;
    case Phase::kRunning:
      if (role == Role::kNone) {
        if (successors_stopped(name, view))
          begin_announced(name, inst, OpKind::kStop, stop_ms, view);
        return;
      }
      if (inst.change.effect == ChangeEffect::kReload && !needs_restart(inst)) {
        spdlog::info("agent: reloading {}: {} changed", name, inst.change.describe());
        begin(name, inst, OpKind::kReload, spec.start_timeout_ms);
        return;
      }
      if (role == Role::kPromote) {
        begin_announced(name, inst, OpKind::kPromote, spec.start_timeout_ms, view, claimed());
        return;
      }
      break;
    case Phase::kPromoted:
      if (role != Role::kPromote) {
        begin_announced(name, inst, OpKind::kDemote, stop_ms, view);
        return;
      }
      if (inst.change.effect == ChangeEffect::kReload && !needs_restart(inst)) {
        spdlog::info("agent: reloading {}: {} changed", name, inst.change.describe());
        begin(name, inst, OpKind::kReload, spec.start_timeout_ms);
        return;
      }
      break;
    case Phase::kFailed: {
      // Recovered as Pacemaker does: a failed instance that may be promoted
      // is demoted first (an agent may refuse to stop a promoted instance,
      // as Stateful does), then stopped whatever the demotion came to. The
      // coordinator's wait for a lost node allows both (placement_step.cc).
      const ResourceSpec& runs_as = inst.running ? *inst.running : spec;
      if (inst.maybe_promoted && !inst.recovery_demoted &&
          runs_as.kind == ResourceKind::kPromotable) {
        // Announced first with notify: marked once the demotion runs.
        begin_announced(name, inst, OpKind::kDemote, stop_ms, view);
        if (inst.op_id != 0 && inst.op == OpKind::kDemote) inst.recovery_demoted = true;
        return;
      }
      begin_announced(name, inst, OpKind::kStop, stop_ms, view);
      return;
    }
    default:
      return;
  }
  if (now >= inst.next_monitor_ms) {
    const ResourceSpec& runs_as = inst.running ? *inst.running : spec;
    begin(name, inst, OpKind::kMonitor, runs_as.monitor.timeout_ms);
  }
}

void NodeAgent::on_completion(const OpCompletion& c) {
  const int64_t now = clock_.mono_ms();
  auto it = instances_.find(c.resource);
  if (it == instances_.end()) return;
  Instance& inst = it->second;
  if (c.id == 0) {
    // The process of a running exec resource exited on its own: handled at
    // the next step, after any operation in flight has answered.
    if (runs(inst.phase) || inst.phase == Phase::kStarting) inst.exited = true;
    next_due_ms_ = now;
    return;
  }
  if (c.id != inst.op_id) return;  // an answer to an operation since superseded
  inst.op_id = 0;
  next_due_ms_ = now;
  if (inst.announces() && notified_kind(c.kind)) record_done(inst, c.kind);
  const std::string what = std::string(op_kind_name(c.kind)) + ": " + op_outcome_name(c.outcome) +
                           (c.detail.empty() ? "" : " (" + c.detail + ")");
  const bool ok = c.outcome == OpOutcome::kOk;
  switch (c.kind) {
    case OpKind::kProbe:
      // A failed probe of a promotable resource (OCF 9: failed while
      // promoted) may be a primary until it is stopped.
      inst.maybe_promoted =
          c.outcome == OpOutcome::kRunningPromoted || (!ok && c.outcome != OpOutcome::kNotRunning &&
                                                       inst.spec.kind == ResourceKind::kPromotable);
      if (ok) {
        inst.phase = Phase::kRunning;
      } else if (c.outcome == OpOutcome::kRunningPromoted) {
        inst.phase = Phase::kPromoted;
      } else if (c.outcome == OpOutcome::kNotRunning) {
        inst.phase = Phase::kStopped;
      } else {
        // Unknown state: stop it to know it (not counted as a failure).
        inst.phase = Phase::kFailed;
        inst.last_failure = what;
      }
      if (inst.phase == Phase::kStopped) {
        set_running(inst, std::nullopt, 0);
      } else if (!inst.running) {
        // Started before definitions were recorded (or by hand): taken to
        // run the applied one.
        set_running(inst, inst.spec, inst.desired_generation);
      }
      if (runs(inst.phase)) {
        spdlog::info("agent: {} already runs here; adopted", c.resource);
        inst.next_monitor_ms = now + inst.spec.monitor.interval_ms;
      }
      return;
    case OpKind::kStart:
      if (!ok) return fail(inst, what);
      inst.phase = Phase::kRunning;
      inst.next_monitor_ms = now + inst.spec.monitor.interval_ms;
      return;
    case OpKind::kStop:
      if (ok || c.outcome == OpOutcome::kNotRunning) {
        inst.phase = Phase::kStopped;
        inst.exited = false;
        inst.maybe_promoted = false;
        inst.recovery_demoted = false;
        set_running(inst, std::nullopt, 0);
        return;
      }
      inst.last_failure = what;
      inst.last_failure_wall_ms = clock_.wall_ms();
      if (inst.stop_cut) {
        // Cut short at the lease's end, not refused: stopped again (with
        // its full timeout once the lease no longer limits it).
        inst.phase = Phase::kFailed;
        spdlog::warn("agent: {}'s stop was cut short at the lease's end: {}", c.resource, what);
        return;
      }
      inst.phase = Phase::kBlocked;
      spdlog::error("agent: {} could not be stopped: {}", c.resource, what);
      return;
    case OpKind::kMonitor: {
      const bool expected =
          inst.phase == Phase::kPromoted ? c.outcome == OpOutcome::kRunningPromoted : ok;
      if (!runs(inst.phase)) return;  // the instance changed since the monitor began
      if (c.outcome == OpOutcome::kRunningPromoted) inst.maybe_promoted = true;
      if (!expected) return fail(inst, what);
      inst.next_monitor_ms = now + inst.spec.monitor.interval_ms;
      return;
    }
    case OpKind::kPromote:
      if (!ok) return fail(inst, what);
      inst.phase = Phase::kPromoted;
      inst.next_monitor_ms = now + inst.spec.monitor.interval_ms;
      return;
    case OpKind::kDemote:
      if (inst.recovery_demoted) {
        // On the way to the stop of a failed instance: the stop comes next,
        // and a refused demotion is not another failure.
        inst.phase = Phase::kFailed;
        if (ok) inst.maybe_promoted = false;
        if (!ok) spdlog::warn("agent: {}'s demotion before its stop: {}", c.resource, what);
        return;
      }
      // A failed demotion (a move's, the lease guard's) is a failure whose
      // recovery stops it without another demotion: the coordinator's wait
      // for a lost node allows one demotion and one stop.
      if (!ok) {
        inst.recovery_demoted = true;
        return fail(inst, what);
      }
      inst.phase = Phase::kRunning;
      inst.maybe_promoted = false;
      inst.next_monitor_ms = now + inst.spec.monitor.interval_ms;
      return;
    case OpKind::kNotify:
      // A failed notification is the agent's to report; the operation it
      // was about goes on (Pacemaker does the same).
      if (!ok) spdlog::warn("agent: {} {}", c.resource, what);
      on_notify_done(inst);
      return;
    case OpKind::kReload:
      // A failed reload leaves the instance in a state nobody knows: it is
      // a failure (stopped, then started with the new definition).
      if (!ok) return fail(inst, what);
      return;
  }
}

NodeStatusRecord NodeAgent::status() const {
  NodeStatusRecord rec;
  rec.probed = probed_;
  for (const auto& [name, inst] : instances_) {
    InstanceStatus st;
    Phase phase = inst.phase;
    // What waits for a claim, what a claim in flight announced, and what a
    // committed claim covers (it may start again, a restart in place, with
    // no new claim): all reported as at least starting (promoted), so that
    // no record understates them until the placement or the lease changes.
    bool covered_promote = false;
    const Phase real = phase;
    for (const auto* set :
         {&claim_waiting_, &claimed_, claim_snapshot_ ? &*claim_snapshot_ : &claim_waiting_}) {
      auto w = set->find(name);
      if (w == set->end()) continue;
      if (phase == Phase::kStopped) phase = Phase::kStarting;
      if (w->second == Role::kPromote) {
        covered_promote = true;
        if (phase == Phase::kRunning) phase = Phase::kPromoting;
      }
    }
    // Raised only by a claim not yet sent: the coordinator may read it as
    // "nothing yet" where its current placement does not put it here (that
    // claim can only fail). The record a claim writes is no such promise:
    // once it commits, the node starts what it announces whatever placement
    // comes after, so it says starting (promoted) outright.
    const bool raised = phase != real || (covered_promote && !inst.maybe_promoted);
    const bool in_claim = claim_snapshot_ && claim_snapshot_->count(name);
    st.claim_pending = raised && !claimed_.count(name) && !in_claim;
    switch (phase) {
      case Phase::kUnprobed:
        continue;
      case Phase::kStopped:
        st.state = InstanceState::kStopped;
        break;
      case Phase::kStarting:
        st.state = InstanceState::kStarting;
        break;
      case Phase::kRunning:
        st.state = InstanceState::kStarted;
        break;
      case Phase::kPromoting:  // counted as promoted from the moment it may be
      case Phase::kPromoted:
      case Phase::kDemoting:
        st.state = InstanceState::kPromoted;
        break;
      case Phase::kStopping:
        st.state = InstanceState::kStopping;
        break;
      case Phase::kFailed:
        st.state = InstanceState::kFailed;
        break;
      case Phase::kBlocked:
        st.state = InstanceState::kBlocked;
        break;
    }
    st.promoted = inst.maybe_promoted || covered_promote;
    st.fail_count = inst.fail_count;
    st.last_failure = inst.last_failure;
    st.last_failure_wall_ms = inst.last_failure_wall_ms;
    st.cleanup_generation = inst.cleanup_generation;
    st.outdated = outdated(inst);
    if (inst.running) {
      st.restart_generation = inst.running_generation;
      st.definition = inst.running_fingerprint;
    }
    st.unmanaged = inst.left_alone;
    if (const NotifyState& n = inst.notify; inst.announces()) {
      if (n.pending) {
        st.notify.pending = op_kind_name(n.pending->op);
        st.notify.pending_seq = n.pending->seq;
      }
      if (n.done) {
        st.notify.done = op_kind_name(n.done->op);
        st.notify.done_seq = n.done->seq;
      }
      st.notify.told = n.told;
    }
    rec.resources[name] = st;
  }
  return rec;
}

}  // namespace bulwark
