// The node agent's notifications (node_agent.h, "Notifications"): the
// handshake by which an instance of a clone with notify (or a proxy's
// source) announces an operation, waits until its peers were told, runs it,
// and has its peers told after. Split from node_agent.cc, whose step calls
// into it.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/node_agent.h"

namespace bulwark {
namespace {

// How much longer than a notify action's timeout an announcing node waits
// for its peers to say they were told: their status writes and the store.
constexpr int64_t kNotifyWaitMarginMs = 1000;

// The order in which notifications are delivered, as Pacemaker orders a
// transition's actions.
constexpr OpKind kNotifyOrder[] = {OpKind::kDemote, OpKind::kStop, OpKind::kStart,
                                   OpKind::kPromote};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

}  // namespace

void NodeAgent::acknowledge(const std::string& resource, const std::string& node, int64_t seq) {
  auto it = instances_.find(resource);
  if (it == instances_.end()) return;
  int64_t& told = it->second.notify.told[node];
  told = std::max(told, seq);
}

void NodeAgent::record_done(Instance& inst, OpKind kind) {
  NotifyState& n = inst.notify;
  if (n.pending && n.pending->op == kind) {
    n.done = n.pending;
  } else {
    // Not announced (a stop or demotion forced by a lost lease): told after.
    last_announced_seq_ = std::max(last_announced_seq_ + 1, clock_.wall_ms());
    n.done = Announced{kind, last_announced_seq_};
  }
  n.pending.reset();
}

void NodeAgent::begin_announced(const std::string& name, Instance& inst, OpKind kind,
                                int timeout_ms, const AgentView& view, bool claimed) {
  // A stop or demotion that the lease's end forces waits for nobody.
  const bool forced = (kind == OpKind::kStop || kind == OpKind::kDemote) && must_demote(inst, view);
  // A clone with notify announces all four; a proxy's source only its stops,
  // so that every proxy drains it first -- unless it failed: a dead server
  // has nothing to drain (and has left the proxies already).
  const bool announced = inst.spec.notify || (kind == OpKind::kStop && inst.announces() &&
                                              inst.phase != Phase::kFailed);
  if (!announced || forced) {
    if (claimed) begin(name, inst, kind, timeout_ms);
    return;
  }
  NotifyState& n = inst.notify;
  const int64_t now = clock_.mono_ms();
  n.pending_wanted = true;
  if (!n.pending || n.pending->op != kind) {
    // A sequence number that grows across daemon restarts too, so that
    // peers never take a new announcement for one they were told of.
    last_announced_seq_ = std::max(last_announced_seq_ + 1, clock_.wall_ms());
    n.pending = Announced{kind, last_announced_seq_};
    n.pending_since_ms = now;
    spdlog::info("agent: {} {} announced to the other instances", op_kind_name(kind), name);
  }
  const bool told = peers_told(name, inst, view);
  const int64_t deadline = n.pending_since_ms + inst.spec.notify_timeout_ms +
                           kOperationTermGraceMs + kNotifyWaitMarginMs;
  if (!told && now < deadline) {
    next_due_ms_ = std::min(next_due_ms_, deadline);
    return;
  }
  if (!claimed) return;
  if (!told) {
    spdlog::warn("agent: {} {}: not every active instance confirmed its notification; going on",
                 op_kind_name(kind), name);
  }
  begin(name, inst, kind, timeout_ms);
}

bool NodeAgent::peers_told(const std::string& name, const Instance& inst,
                           const AgentView& view) const {
  const int64_t seq = inst.notify.pending->seq;
  const auto told_here = [&](const std::map<std::string, int64_t>& told) {
    auto t = told.find(options_.node);
    return t != told.end() && t->second >= seq;
  };
  // Who must be told: with notify, every active instance (this node's
  // too); for a stop, every node running a proxy that takes servers from it
  // (which acknowledges once the server is drained).
  const bool notify = inst.spec.notify;
  const bool drain = inst.notify.pending->op == OpKind::kStop && inst.phase != Phase::kFailed;
  const auto proxy_here = [&]() {
    return std::any_of(inst.proxy_sources_of.begin(), inst.proxy_sources_of.end(),
                       [&](const std::string& p) {
                         auto it = instances_.find(p);
                         return it != instances_.end() && runs(it->second.phase);
                       });
  };
  if (((notify && runs(inst.phase)) || (drain && proxy_here())) && !told_here(inst.notify.told))
    return false;
  if (!view.statuses) return true;
  for (const auto& [node, rec] : *view.statuses) {
    if (node == options_.node || view.unreachable.count(node)) continue;
    // An init-capture: a lambda may not name a structured binding (C++20).
    const auto active = [&record = rec](const std::string& resource) {
      auto r = record.resources.find(resource);
      return r != record.resources.end() && instance_started(r->second.state);
    };
    const bool proxy_there =
        drain && std::any_of(inst.proxy_sources_of.begin(), inst.proxy_sources_of.end(), active);
    if (!(notify && active(name)) && !proxy_there) continue;
    auto r = rec.resources.find(name);
    if (r == rec.resources.end() || !told_here(r->second.notify.told)) return false;
  }
  return true;
}

bool NodeAgent::step_notify(const std::string& name, Instance& inst, const AgentView& view) {
  NotifyState& n = inst.notify;
  // Every node's announcement and newest done, this node's own included.
  std::map<std::string, Announced> pending;
  std::map<std::string, Announced> done;
  if (view.statuses) {
    for (const auto& [node, rec] : *view.statuses) {
      if (node == options_.node) continue;
      auto r = rec.resources.find(name);
      if (r == rec.resources.end()) continue;
      const NotifyStatus& ns = r->second.notify;
      if (auto op = parse_op_kind(ns.pending); op && ns.pending_seq > 0)
        pending[node] = Announced{*op, ns.pending_seq};
      if (auto op = parse_op_kind(ns.done); op && ns.done_seq > 0)
        done[node] = Announced{*op, ns.done_seq};
    }
  }
  if (n.pending) pending[options_.node] = *n.pending;
  if (n.done) done[options_.node] = *n.done;
  // What is done is told (post) to the instance if it is active or about
  // to be: a new instance hears of the starts that went with its own.
  const bool joining =
      inst.phase == Phase::kStarting || (n.pending && n.pending->op == OpKind::kStart);
  const bool listening = runs(inst.phase) || joining;
  const bool first_look = n.done_seen.empty();
  for (const auto& [node, d] : done) {
    auto [seen, added] = n.done_seen.try_emplace(node, 0);
    if (d.seq <= seen->second) continue;
    seen->second = d.seq;
    // At the first look, what others did earlier is history, not news.
    if (first_look && node != options_.node) continue;
    if (listening) n.post_due[node] = d;
  }
  if (n.done_seen.empty()) n.done_seen[options_.node] = 0;  // the first look happened
  if (!listening) n.post_due.clear();
  if (!runs(inst.phase) || inst.left_alone || view.config_unreadable) return false;
  if (must_demote(inst, view)) return false;  // the demotion first
  const auto begin_notify = [&](bool post, OpKind op, const std::map<std::string, int64_t>& seqs) {
    std::vector<std::string> batch;
    batch.reserve(seqs.size());
    for (const auto& e : seqs) batch.push_back(e.first);
    n.in_flight = notify_event(name, inst, post, op, batch, view);
    n.in_flight_seqs = seqs;
    spdlog::info("agent: notify {}: {}-{} of {}", name, post ? "post" : "pre", op_kind_name(op),
                 join(batch));
    begin(name, inst, OpKind::kNotify, inst.spec.notify_timeout_ms);
  };
  for (const OpKind op : kNotifyOrder) {
    std::map<std::string, int64_t> seqs;
    for (const auto& [node, d] : n.post_due) {
      if (d.op == op) seqs[node] = d.seq;
    }
    if (!seqs.empty()) {
      begin_notify(true, op, seqs);
      return true;
    }
  }
  for (const OpKind op : kNotifyOrder) {
    std::map<std::string, int64_t> seqs;
    bool news = false;
    for (const auto& [node, a] : pending) {
      if (a.op != op) continue;
      seqs[node] = a.seq;
      auto t = n.told.find(node);
      news = news || t == n.told.end() || t->second < a.seq;
    }
    if (news) {
      begin_notify(false, op, seqs);
      return true;
    }
  }
  return false;
}

void NodeAgent::on_notify_done(Instance& inst) {
  NotifyState& n = inst.notify;
  for (const auto& [node, seq] : n.in_flight_seqs) {
    if (n.in_flight.post) {
      auto due = n.post_due.find(node);
      if (due != n.post_due.end() && due->second.seq <= seq) n.post_due.erase(due);
    } else {
      n.told[node] = std::max(n.told[node], seq);
    }
  }
  n.in_flight_seqs.clear();
}

NotifyEvent NodeAgent::notify_event(const std::string& name, const Instance& inst, bool post,
                                    OpKind op, const std::vector<std::string>& batch,
                                    const AgentView& view) const {
  // The clone as it is now; for a post notification, as it was before the
  // operation (what Pacemaker passes: the state at the transition's start).
  std::set<std::string> active;
  std::set<std::string> promoted;
  if (runs(inst.phase)) active.insert(options_.node);
  if (inst.phase == Phase::kPromoted || inst.phase == Phase::kDemoting)
    promoted.insert(options_.node);
  std::set<std::string> all(view.nodes.begin(), view.nodes.end());
  all.insert(options_.node);
  if (view.statuses) {
    for (const auto& [node, rec] : *view.statuses) {
      if (node == options_.node) continue;
      all.insert(node);
      auto r = rec.resources.find(name);
      if (r == rec.resources.end() || !instance_started(r->second.state)) continue;
      active.insert(node);
      // A node about to promote publishes itself as promoted (what waits
      // for a claim may never be understated): not yet, for its agent.
      if (r->second.state == InstanceState::kPromoted && r->second.notify.pending != "promote")
        promoted.insert(node);
    }
  }
  if (post) {
    for (const auto& node : batch) {
      if (op == OpKind::kStart) active.erase(node);
      if (op == OpKind::kStop) active.insert(node);
      if (op == OpKind::kPromote) promoted.erase(node);
      if (op == OpKind::kDemote) promoted.insert(node);
    }
  }
  NotifyEvent e;
  e.post = post;
  e.operation = op;
  e.lists[op_kind_name(op)] = batch;
  e.lists["active"].assign(active.begin(), active.end());
  e.lists["all"].assign(all.begin(), all.end());
  for (const auto& node : all) {
    if (!active.count(node)) e.lists["inactive"].push_back(node);
  }
  if (inst.spec.kind == ResourceKind::kPromotable) {
    e.lists["promoted"].assign(promoted.begin(), promoted.end());
    for (const auto& node : active) {
      if (!promoted.count(node)) e.lists["unpromoted"].push_back(node);
    }
  }
  return e;
}

}  // namespace bulwark
