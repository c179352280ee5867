#include "sim/sim_cluster.h"

#include <algorithm>

#include "core/check.h"
#include "sim/checkers.h"
#include "sim/sim_resources.h"
#include "sim/sim_runner.h"

namespace bulwark::sim {
namespace {

// Store calls: usually a few ms, now and then far slower (an etcd leader
// change, a loaded disk); a reply can be lost, which the client sees as a
// timeout although the transaction committed.
constexpr int kStoreSlowPerMille = 50;
constexpr int kStoreReplyLostPerMille = 5;
// How late a node's watch delivers a change: usually a few ms.
constexpr int kWatchSlowPerMille = 20;
// Fence agents take a while and sometimes fail (then they are retried).
constexpr int kFenceFailPerMille = 150;
// Fence agents reboot the node (fencing's action "reboot"): it is off at
// once and boots this long after. Once the faults are over they no longer
// fail.
constexpr int64_t kFenceRebootMinMs = 500;
constexpr int64_t kFenceRebootMaxMs = 2000;
// Invariant 4 is looked at this often while a phase waits for it, and must
// hold this long, with nothing starting or stopping and the placement
// unchanged, before the quiet period begins: a single instant where what
// runs matches the placement may be one the coordinator is about to move on
// from.
constexpr int64_t kSettleCheckEveryMs = 10;
constexpr int64_t kSettleHoldMs = 500;

SimConfig make_config(const Schedule& s) {
  SimConfig c;
  for (int i = 0; i < s.nodes; ++i) c.nodes.push_back("n" + std::to_string(i + 1));
  c.fencing = s.protection == Protection::kFencing;
  // The shortest timeout a watchdog driver takes (whole seconds).
  c.watchdog_ms = s.protection == Protection::kWatchdog ? 1000 : 0;
  c.resources_yaml = resources_yaml();
  return c;
}

}  // namespace

SimCluster::SimCluster(const Schedule& schedule, SimOptions options)
    : schedule_(schedule),
      options_(options),
      config_(make_config(schedule)),
      rng_(schedule.seed ^ 0x6a09e667f3bcc909ull),  // another stream than the schedule's
      trace_(400),
      store_(Schema("/bulwark/" + config_.cluster)),
      net_(schedule.nodes, schedule.network),
      procs_(config_.nodes, trace_) {
  trace_.set_echo(options.verbose);
  // An exec process's exit reaches the runner of the daemon that watches it.
  procs_.on_exit = [this](int node, const std::string& resource) {
    if (SimRunner* r = nodes_[node]->runner()) r->on_exit(resource);
  };
  // The store as `bulwark init` and `bulwark apply` leave it: the schema
  // record, the nodes and the resources file.
  const Schema& schema = store_.schema();
  std::vector<TxnOp> ops = {TxnOp::put(schema.schema_key(), schema.encode_schema(config_.cluster))};
  for (const auto& name : config_.nodes) {
    NodeRecord n;
    n.name = name;
    n.address = name;
    ops.push_back(TxnOp::put(schema.node_key(name), Schema::encode_node(n)));
  }
  ResourcesRecord res;
  res.text = config_.resources_yaml;
  res.source = "resources.yaml";
  ops.push_back(TxnOp::put(schema.resources_key(), Schema::encode_resources(res)));
  operator_write(ops);
  resources_ = store_.state()->resource_config;
  BW_CHECK(resources_ != nullptr, "the simulation's resources file must parse");

  for (int i = 0; i < schedule.nodes; ++i) {
    nodes_.push_back(
        std::make_unique<SimNode>(*this, i, now_, schedule.clock_offset_ms[i], store_.schema()));
    nodes_.back()->power_on(schedule.boot_ms[i]);
    node_list_.push_back(nodes_.back().get());
  }
  store_access_.assign(nodes_.size(), false);
  watch_due_ms_.assign(nodes_.size(), -1);
  watchdog_fed_ms_.assign(nodes_.size(), -1);
  update_store_access();
}

SimCluster::~SimCluster() = default;

int SimCluster::node_index(const std::string& name) const {
  for (std::size_t i = 0; i < config_.nodes.size(); ++i) {
    if (config_.nodes[i] == name) return static_cast<int>(i);
  }
  BW_CHECK(false, "datagram to an unknown node");
  return 0;
}

SimResult SimCluster::run() {
  // The daemons' log lines on this thread go to this run's trace.
  struct CurrentTrace {
    explicit CurrentTrace(Trace* t) { Trace::current() = t; }
    ~CurrentTrace() { Trace::current() = nullptr; }
  } current(&trace_);
  // Every phase is bounded, so is the run.
  const int64_t bound_ms = kBootBoundMs + 2 * kQuietMs + schedule_.fault_window_ms +
                           kRecoverBoundMs + 2 * kSettleCheckEveryMs;  // holds end within bounds
  for (now_ = 0; phase_ != Phase::kDone && !failure_; ++now_) {
    BW_CHECK(now_ <= bound_ms, "a phase outlived its bound");
    trace_.set_now(now_);
    step();
  }
  if (failure_) return *failure_;
  SimResult r;
  r.seed = schedule_.seed;
  r.starts = procs_.starts();
  r.store_revision = store_.revision();
  return r;
}

void SimCluster::step() {
  // The world moves first: the schedule's faults, processes acting on
  // their own, fence agents, watchdogs, the store, the network, the
  // watches.
  if (phase_ == Phase::kFaults) {
    const auto& faults = schedule_.faults;
    while (next_fault_ < faults.size() && faults_from_ms_ + faults[next_fault_].at_ms <= now_)
      start_fault(faults[next_fault_++]);
    for (std::size_t i = 0; i < fault_ends_.size();) {
      if (fault_ends_[i].at_ms > now_) {
        ++i;
        continue;
      }
      const Fault f = fault_ends_[i].fault;
      fault_ends_.erase(fault_ends_.begin() + static_cast<std::ptrdiff_t>(i));
      end_fault(f);
    }
    if (now_ == faults_from_ms_ + schedule_.fault_window_ms) heal();
  }
  procs_.advance(now_);
  // Agent scripts finish while their daemon is paused, too.
  for (auto& n : nodes_) {
    if (SimRunner* r = n->runner()) r->poll();
  }
  run_fences();
  run_watchdogs();
  update_store_access();  // machines boot, links change
  run_store_calls();
  deliver_packets();
  deliver_watches();
  // Then every daemon runs its threads.
  for (auto& n : nodes_) n->run();
  check();
}

// --- faults ---------------------------------------------------------------

void SimCluster::start_fault(const Fault& f) {
  trace_.add("fault", describe(f, config_.nodes));
  const int64_t end_ms =
      std::min(now_ + f.duration_ms, faults_from_ms_ + schedule_.fault_window_ms);
  SimNode& node = *nodes_[f.node];
  switch (f.kind) {
    case FaultKind::kPowerLoss:
      power_off(f.node, "power loss");
      break;
    case FaultKind::kDaemonCrash:
      node.crash_daemon(end_ms);
      return;
    case FaultKind::kPause:
      node.pause_until(end_ms);
      return;
    case FaultKind::kPartition:
      for (int a : f.side) {
        for (int b = 0; b < schedule_.nodes; ++b) {
          if (std::find(f.side.begin(), f.side.end(), b) != f.side.end()) continue;
          net_.cut(a, b);
          net_.cut(b, a);
        }
      }
      break;
    case FaultKind::kOneWay:
      net_.cut(f.node, f.other);
      break;
    case FaultKind::kLossyLink:
      net_.set_loss(f.node, f.other, f.per_mille);
      break;
    case FaultKind::kResourceCrash:
      procs_.kill(f.node, f.resource, 0, "crashed");
      return;
    case FaultKind::kStartFails:
      armed_faults_.insert({f.node, f.resource, OpFault::kStartFails});
      return;
    case FaultKind::kStopHangs:
      armed_faults_.insert({f.node, f.resource, OpFault::kStopHangs});
      return;
    case FaultKind::kPromoteFails:
      armed_faults_.insert({f.node, f.resource, OpFault::kPromoteFails});
      return;
    case FaultKind::kRedefine: {
      ++versions_[f.resource];
      ResourcesRecord res;
      res.text = resources_yaml(versions_);
      res.source = "sim.yaml";
      operator_write({TxnOp::put(store_.schema().resources_key(), Schema::encode_resources(res))});
      resources_ = store_.state()->resource_config;
      BW_CHECK(resources_ != nullptr, "a redefined resources file must parse");
      return;
    }
    case FaultKind::kRestart:
      update_directives([&](DirectivesRecord& d) { ++d.restarts[f.resource]; });
      return;
    case FaultKind::kMaintenance:
      set_node_mode(f.node, NodeMode::kMaintenance);
      break;
    case FaultKind::kUnmanage:
      update_directives([&](DirectivesRecord& d) { d.unmanaged.insert(f.resource); });
      break;
  }
  fault_ends_.push_back(FaultEnd{end_ms, f});
  update_store_access();
}

void SimCluster::end_fault(const Fault& f) {
  switch (f.kind) {
    case FaultKind::kPowerLoss:
      power_on(f.node, rng_.range(20, 300));
      break;
    case FaultKind::kPartition:
      for (int a : f.side) {
        for (int b = 0; b < schedule_.nodes; ++b) {
          if (std::find(f.side.begin(), f.side.end(), b) != f.side.end()) continue;
          net_.restore(a, b);
          net_.restore(b, a);
        }
      }
      trace_.add("fault", "partition healed");
      break;
    case FaultKind::kOneWay:
      net_.restore(f.node, f.other);
      trace_.add("fault",
                 "link " + config_.nodes[f.node] + " -> " + config_.nodes[f.other] + " restored");
      break;
    case FaultKind::kLossyLink:
      net_.set_loss(f.node, f.other, 0);
      break;
    case FaultKind::kMaintenance:
      set_node_mode(f.node, NodeMode::kOnline);
      trace_.add("fault", "the operator takes " + config_.nodes[f.node] + " out of maintenance");
      break;
    case FaultKind::kUnmanage:
      update_directives([&](DirectivesRecord& d) { d.unmanaged.erase(f.resource); });
      trace_.add("fault", "the operator manages " + f.resource + " again");
      break;
    default:
      break;
  }
  update_store_access();
}

void SimCluster::update_directives(const std::function<void(DirectivesRecord&)>& change) {
  const std::string key = store_.schema().directives_key();
  DirectivesRecord d;
  if (auto kv = store_.get(key)) {
    auto current = Schema::decode_directives(kv->value);
    BW_CHECK(current.ok(), "the directives record must decode");
    d = *current;
  }
  change(d);
  operator_write({TxnOp::put(key, Schema::encode_directives(d))});
}

void SimCluster::operator_write(const std::vector<TxnOp>& ops) {
  const TxnResult r = store_.txn({}, ops);
  BW_CHECK(r.succeeded, "an operator write without compares commits");
  for (const TxnOp& op : ops) {
    BW_CHECK(!op.prefix, "the operator deletes single keys");
    acked_[op.key] = op.kind == TxnOp::Kind::kPut ? r.revision : 0;
  }
}

void SimCluster::set_node_mode(int node, NodeMode mode) {
  const std::string key = store_.schema().node_key(config_.nodes[node]);
  auto kv = store_.get(key);
  BW_CHECK(kv.has_value(), "every node has a record");
  auto rec = Schema::decode_node(kv->value);
  BW_CHECK(rec.ok(), "a node record must decode");
  rec->mode = mode;
  operator_write({TxnOp::put(key, Schema::encode_node(*rec))});
}

void SimCluster::heal() {
  enter(Phase::kRecover, "every fault ends: links heal, nodes boot, pauses end");
  // The operator ends what it still holds (maintenance, unmanaged).
  for (const FaultEnd& e : fault_ends_) {
    if (e.fault.kind == FaultKind::kMaintenance || e.fault.kind == FaultKind::kUnmanage)
      end_fault(e.fault);
  }
  fault_ends_.clear();
  net_.heal();
  armed_faults_.clear();
  for (int i = 0; i < schedule_.nodes; ++i) {
    power_on(i, rng_.range(20, 300));
    nodes_[i]->resume();
  }
  update_store_access();
}

void SimCluster::power_off(int node, const std::string& why) {
  if (!nodes_[node]->powered()) return;
  trace_.add(config_.nodes[node], "power off (" + why + ")");
  nodes_[node]->power_off();
  procs_.power_off(node);
  watch_due_ms_[node] = -1;
  watchdog_fed_ms_[node] = -1;
  update_store_access();
}

void SimCluster::power_on(int node, int64_t boot_delay_ms) {
  if (nodes_[node]->powered()) return;
  trace_.add(config_.nodes[node], "power on");
  nodes_[node]->power_on(now_ + boot_delay_ms);
  update_store_access();
}

bool SimCluster::inject(int node, const std::string& resource, OpFault fault) {
  if (armed_faults_.erase({node, resource, fault})) {
    trace_.add(config_.nodes[node], "injected failure of this operation on " + resource);
    return true;
  }
  return fault == OpFault::kStartFails && phase_ == Phase::kFaults &&
         rng_.chance(schedule_.start_fail_per_mille);
}

// --- the store --------------------------------------------------------------

void SimCluster::update_store_access() {
  // etcd answers a node that reaches (both ways) a majority of the members
  // whose machine is up, itself included.
  const int majority = schedule_.nodes / 2 + 1;
  for (int i = 0; i < schedule_.nodes; ++i) {
    int reach = 0;
    for (int j = 0; j < schedule_.nodes; ++j) {
      if (nodes_[j]->machine_up() && (i == j || net_.both_ways(i, j))) ++reach;
    }
    const bool access = nodes_[i]->machine_up() && reach >= majority;
    if (access != store_access_[i])
      trace_.add(config_.nodes[i], access ? "reaches the store" : "cannot reach the store");
    store_access_[i] = access;
  }
}

void SimCluster::store_call(int node, uint64_t incarnation, StoreRequest request, StoreDone done) {
  BW_ASSERT(calls_.size() < 1000, "store calls pile up");
  Call c;
  c.node = node;
  c.incarnation = incarnation;
  c.request = std::move(request);
  c.done = std::move(done);
  const int64_t timeout_ms =
      c.request.timeout_ms > 0 ? c.request.timeout_ms : config_.store_timeout_ms;
  const int64_t deadline = now_ + timeout_ms;
  const int64_t latency =
      rng_.chance(kStoreSlowPerMille) ? rng_.range(10, 2 * timeout_ms) : rng_.range(1, 8);
  const bool lost = rng_.chance(kStoreReplyLostPerMille);
  c.deadline_ms = deadline;
  c.issued_ms = now_;
  c.reply_ms = deadline;
  c.coordinator_write = c.request.read_key.empty() &&
                        is_coordinator_write(store_.schema(), c.request.compares, c.request.ops);
  c.lease_when_sent = nodes_[node]->holds_lease();
  if (store_access_[node]) {
    // It reaches the store before the client's deadline, or not at all.
    c.commit_ms = now_ + rng_.range(1, std::min<int64_t>(latency, timeout_ms));
    if (!lost && now_ + latency < deadline) c.reply_ms = now_ + latency;
    c.reply_lost = lost || now_ + latency >= deadline;
  }
  calls_.emplace(next_call_++, std::move(c));
}

void SimCluster::run_store_calls() {
  const StoreReply timeout{make_error(Errc::kTimeout, "no answer in time"), {}, {}};
  for (auto it = calls_.begin(); it != calls_.end();) {
    Call& c = it->second;
    if (c.commit_ms >= 0 && c.commit_ms <= now_ && !c.reply) {
      if (store_access_[c.node]) {
        StoreReply r;
        std::string outcome;
        if (!c.request.read_key.empty()) {
          if (auto kv = store_.get(c.request.read_key)) r.range.kvs.push_back(*kv);
          r.range.revision = store_.revision();
          outcome = r.range.kvs.empty() ? "absent" : "found";
        } else {
          r.txn = store_.txn(c.request.compares, c.request.ops);
          outcome = r.txn.succeeded ? "committed at revision " + std::to_string(r.txn.revision)
                                    : std::string("compare failed");
          if (r.txn.succeeded && c.coordinator_write) {
            if (auto e = coordinator_write_under_lease(config_.nodes[c.node], c.request.what,
                                                       c.lease_when_sent);
                !e.empty())
              fail(e);
          }
        }
        trace_.add(config_.nodes[c.node], "store: " + c.request.what + " -> " + outcome);
        c.reply = c.reply_lost ? timeout : r;
      } else {
        c.reply = timeout;  // lost with the link: the client waits out its deadline
        c.reply_ms = c.deadline_ms;
      }
    }
    if (now_ < c.reply_ms) {
      ++it;
      continue;
    }
    const SimNode& node = *nodes_[c.node];
    if (!node.running() || node.incarnation() != c.incarnation) {
      it = calls_.erase(it);  // the daemon that waited is gone
      continue;
    }
    if (node.paused()) {
      ++it;  // delivered once it runs again
      continue;
    }
    const StoreReply reply = c.reply ? *c.reply : timeout;
    if (reply.error)
      trace_.add(node.name(), "store: " + c.request.what + " -> " + reply.error->message +
                                  " (the thread waited " + std::to_string(now_ - c.issued_ms) +
                                  " ms)");
    StoreDone done = std::move(c.done);
    trace_.set_actor(node.name());
    it = calls_.erase(it);
    // May make new calls: they have larger ids and later times.
    done(reply);
  }
}

void SimCluster::deliver_watches() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    SimNode& node = *nodes_[i];
    if (!node.running() || node.paused() || !store_access_[i] ||
        node.cache_revision() >= store_.revision()) {
      if (!node.running() || !store_access_[i]) watch_due_ms_[i] = -1;
      continue;
    }
    if (watch_due_ms_[i] < 0)
      watch_due_ms_[i] =
          now_ + (rng_.chance(kWatchSlowPerMille) ? rng_.range(20, 300) : rng_.range(1, 10));
    if (now_ < watch_due_ms_[i]) continue;
    node.set_cache(store_.state());
    watch_due_ms_[i] = -1;
  }
}

// --- network and fencing -----------------------------------------------------

void SimCluster::send(int from, const Datagram& d) {
  net_.send(now_, from, node_index(d.address), d.bytes, rng_);
}

void SimCluster::deliver_packets() {
  for (auto& p : net_.take_due(now_)) nodes_[p.to]->receive(std::move(p.bytes));
}

uint64_t SimCluster::begin_fence(int caller, uint64_t incarnation, const std::string& target) {
  BW_ASSERT(fences_.size() < 1000, "fence calls pile up");
  FenceCall f;
  f.caller = caller;
  f.incarnation = incarnation;
  f.target = node_index(target);
  f.done_ms = now_ + rng_.range(50, 1000);
  f.succeeds = !rng_.chance(kFenceFailPerMille) || phase_ != Phase::kFaults;
  trace_.add(config_.nodes[caller], "fence agent runs for " + target);
  fences_.emplace(next_fence_, f);
  return next_fence_++;
}

FenceState SimCluster::fence_state(uint64_t call) {
  const auto it = fences_.find(call);
  if (it == fences_.end()) return FenceState::kFailed;
  const FenceState st = it->second.state;
  if (st != FenceState::kPending) fences_.erase(it);
  return st;
}

void SimCluster::run_fences() {
  for (auto it = fences_.begin(); it != fences_.end();) {
    FenceCall& f = it->second;
    const SimNode& caller = *nodes_[f.caller];
    const bool caller_alive = caller.running() && caller.incarnation() == f.incarnation;
    if (!caller_alive) {
      it = fences_.erase(it);  // the agent died with its daemon; nobody asks for it
      continue;
    }
    if (f.state == FenceState::kPending && now_ >= f.done_ms) {
      if (f.succeeds) {
        power_off(f.target, "fenced by " + caller.name());
        power_on(f.target, rng_.range(kFenceRebootMinMs, kFenceRebootMaxMs));
        f.state = FenceState::kOff;
      } else {
        trace_.add(caller.name(), "fence agent for " + config_.nodes[f.target] + " failed");
        f.state = FenceState::kFailed;
      }
    }
    ++it;
  }
}

void SimCluster::run_watchdogs() {
  // A watchdog nobody fed resets its machine: power off, and on again (it
  // stays armed across a daemon crash: the device was not closed cleanly).
  for (int i = 0; i < schedule_.nodes; ++i) {
    if (watchdog_fed_ms_[i] < 0 || now_ - watchdog_fed_ms_[i] < config_.watchdog_ms) continue;
    power_off(i, "watchdog reset");
    power_on(i, rng_.range(20, 300));
  }
}

// --- checkers ---------------------------------------------------------------

void SimCluster::fail(const std::string& what) {
  if (failure_) return;  // the first violation is the one to explain
  trace_.add("CHECK", what);
  SimResult r;
  r.seed = schedule_.seed;
  r.ok = false;
  r.failed_at_ms = now_;
  r.failure = what;
  r.starts = procs_.starts();
  failure_ = r;
}

void SimCluster::check_quiet(const char* phase) {
  const auto& state = *store_.state();
  const int64_t placement_rev = state.placement ? state.placement->mod_revision : 0;
  if (procs_.changes() != quiet_changes_)
    return fail(std::string("no restart without cause: ") +
                std::to_string(procs_.changes() - quiet_changes_) +
                " process starts/stops/promotions/demotions in the quiet period " + phase);
  if (placement_rev != quiet_placement_revision_)
    return fail(
        std::string("no restart without cause: the placement changed in the quiet period ") +
        phase);
}

void SimCluster::enter(Phase phase, const char* what) {
  phase_ = phase;
  phase_since_ms_ = now_;
  settled_since_ms_ = -1;  // a phase waiting for invariant 4 waits its full hold
  trace_.add("phase", what);
}

std::string SimCluster::settled() {
  for (const auto& [id, f] : fences_) {
    if (f.state == FenceState::kPending) return "a fence agent still runs";
  }
  return converged(*store_.state(), procs_, node_list_);
}

void SimCluster::check() {
  if (store_.revision() != acked_checked_revision_) {
    acked_checked_revision_ = store_.revision();
    if (auto e = acknowledged_writes_kept(store_, acked_); !e.empty()) return fail(e);
  }
  if (procs_.changes() != checked_changes_) {
    checked_changes_ = procs_.changes();
    if (auto e = exclusive_at_most_once(*resources_, procs_, config_.nodes); !e.empty())
      return fail(e);
  }
  // Where neither a fence agent nor a watchdog covers a lost node, its own
  // stops are all that keeps invariant 1.
  if (schedule_.protection == Protection::kLeaseOnly && options_.lease_check) {
    if (auto e = stopped_by_lease_end(*resources_, procs_, node_list_, now_, config_.lease_ms);
        !e.empty())
      return fail(e);
  }
  const int64_t in_phase_ms = now_ - phase_since_ms_;
  switch (phase_) {
    case Phase::kBoot:
    case Phase::kRecover: {
      if (now_ % kSettleCheckEveryMs != 0) return;
      const bool boot = phase_ == Phase::kBoot;
      const std::string why = settled();
      const auto& state = *store_.state();
      const int64_t placement_rev = state.placement ? state.placement->mod_revision : 0;
      if (!why.empty()) {
        settled_since_ms_ = -1;
      } else if (settled_since_ms_ < 0 || procs_.changes() != quiet_changes_ ||
                 placement_rev != quiet_placement_revision_) {
        settled_since_ms_ = now_;  // the hold starts (again) here
        quiet_changes_ = procs_.changes();
        quiet_placement_revision_ = placement_rev;
      } else if (now_ - settled_since_ms_ >= kSettleHoldMs) {
        return enter(boot ? Phase::kQuietAfterBoot : Phase::kQuietAfterRecovery,
                     "converged; quiet from now on");
      }
      if (in_phase_ms >= (boot ? kBootBoundMs : kRecoverBoundMs))
        return fail((why.empty() ? "invariant 4: still changing" : why) +
                    (boot ? " (after boot)" : " (after the faults ended)"));
      return;
    }
    case Phase::kQuietAfterBoot:
    case Phase::kQuietAfterRecovery: {
      if (in_phase_ms < kQuietMs) return;
      const bool boot = phase_ == Phase::kQuietAfterBoot;
      check_quiet(boot ? "after boot" : "after the faults ended");
      if (failure_) return;
      if (auto e = converged(*store_.state(), procs_, node_list_); !e.empty()) return fail(e);
      if (!boot) return enter(Phase::kDone, "done");
      faults_from_ms_ = now_ + 1;
      return enter(Phase::kFaults, "faults begin (schedule time faults+0)");
    }
    case Phase::kFaults:
    case Phase::kDone:
      return;
  }
}

}  // namespace bulwark::sim
