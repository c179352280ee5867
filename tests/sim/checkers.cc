#include "sim/checkers.h"

#include <algorithm>
#include <climits>

#include "core/resource_change.h"

namespace bulwark::sim {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return "[" + out + "]";
}

}  // namespace

std::string exclusive_at_most_once(const ResourceConfig& config, const Processes& procs,
                                   const std::vector<std::string>& nodes) {
  for (const auto& spec : config.resources) {
    if (spec.kind == ResourceKind::kClone) continue;
    std::vector<std::string> holders;
    for (std::size_t n = 0; n < nodes.size(); ++n) {
      const Instance& i = procs.get(static_cast<int>(n), spec.name);
      const bool exclusive = spec.kind == ResourceKind::kSingleton ? i.running : i.promoted;
      if (exclusive) holders.push_back(nodes[n]);
    }
    const std::size_t max =
        spec.kind == ResourceKind::kSingleton ? 1 : static_cast<std::size_t>(spec.promoted_max);
    if (holders.size() > max)
      return "invariant 1: " + spec.name +
             (spec.kind == ResourceKind::kSingleton ? " runs" : " is promoted") + " on " +
             join(holders) + " at once";
  }
  return "";
}

std::string stopped_by_lease_end(const ResourceConfig& config, const Processes& procs,
                                 const std::vector<const SimNode*>& nodes, int64_t now_ms,
                                 int lease_ms) {
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    const SimNode& node = *nodes[n];
    if (!node.running() || node.paused() || node.holds_lease()) continue;
    // A daemon that just started, or was paused within a lease, may hold
    // instances nobody told it to stop in time: fencing's business.
    const int64_t calm_since_ms = std::max(node.daemon_started_ms(), node.paused_until_ms());
    if (now_ms - calm_since_ms < lease_ms + 100) continue;
    if (node.lease_end_ms() == INT64_MIN) continue;  // never held one
    const int64_t late_ms = now_ms - node.lease_end_ms();
    if (late_ms <= kLeaseSlackMs) continue;
    for (const auto& spec : config.resources) {
      if (spec.kind == ResourceKind::kClone) continue;
      const Instance& i = procs.get(static_cast<int>(n), spec.name);
      if (!i.running || i.since_ms < node.daemon_started_ms()) continue;
      if (spec.kind != ResourceKind::kSingleton && !i.promoted) continue;
      // Left alone (maintenance, unmanaged) the node does not stop it; once
      // managed again it has a lease's time, like a daemon just started.
      // (The coordinator counts such an instance stopped only after a fence.)
      const int64_t alone_ms = node.left_alone_ms(spec.name);
      if (alone_ms != INT64_MIN && now_ms - alone_ms < lease_ms + 100) continue;
      // An OCF or systemd action cannot be forced short: it runs to its
      // timeout (a demote, then a stop, for a promoted instance), and the
      // coordinator waits as long (placement_step.cc, stop_allowance_ms).
      if (spec.agent.agent_class != AgentClass::kExec &&
          late_ms <= (i.promoted ? 2 : 1) * int64_t{spec.stop_timeout_ms})
        continue;
      const int64_t write_ms = node.status_write_ms();
      return "lease: " + node.name() + " still runs " + spec.name +
             (i.promoted ? " promoted " : " ") + std::to_string(late_ms) +
             " ms after its quorum lease ended" +
             (write_ms >= 0
                  ? " (its status write has been in flight for " + std::to_string(write_ms) + " ms)"
                  : "");
    }
  }
  return "";
}

std::string acknowledged_writes_kept(const SimStore& store,
                                     const std::map<std::string, int64_t>& acked) {
  for (const auto& [key, revision] : acked) {
    const auto kv = store.get(key);
    if (revision == 0 && !kv) continue;
    if (revision == 0)
      return "invariant 2: " + key +
             ", which the operator deleted, was written again at revision " +
             std::to_string(kv->mod_revision);
    if (!kv)
      return "invariant 2: " + key + ", which the operator wrote at revision " +
             std::to_string(revision) + ", is gone";
    if (kv->mod_revision != revision)
      return "invariant 2: " + key + ", which the operator wrote at revision " +
             std::to_string(revision) + ", was overwritten at revision " +
             std::to_string(kv->mod_revision);
  }
  return "";
}

bool is_coordinator_write(const Schema& schema, const std::vector<Compare>& compares,
                          const std::vector<TxnOp>& ops) {
  const std::string& key = schema.coordinator_key();
  return std::any_of(compares.begin(), compares.end(),
                     [&](const Compare& c) { return c.key == key; }) ||
         std::any_of(ops.begin(), ops.end(), [&](const TxnOp& op) { return op.key == key; });
}

std::string coordinator_write_under_lease(const std::string& node, const std::string& what,
                                          bool held_lease_when_sent) {
  if (held_lease_when_sent) return "";
  return "invariant 3: " + node +
         " sent a coordinator write without its quorum lease, and it "
         "committed: " +
         what;
}

std::string converged(const ClusterState& committed, const Processes& procs,
                      const std::vector<const SimNode*>& nodes) {
  std::vector<std::string> all;
  for (const SimNode* node : nodes) {
    if (!node->running() || node->paused()) return "invariant 4: " + node->name() + " is not up";
    if (!node->holds_lease()) return "invariant 4: " + node->name() + " holds no quorum lease";
    all.push_back(node->name());
  }
  if (!committed.resource_config) return "invariant 4: no resources config";
  if (!committed.placement) return "invariant 4: nothing was ever placed";
  const PlacementRecord& p = *committed.placement;
  if (!committed.resources || p.resources_revision != committed.resources->mod_revision)
    return "invariant 4: the placement is not of the applied resources";
  for (const auto& spec : committed.resource_config->resources) {
    const auto it = p.resources.find(spec.name);
    if (it == p.resources.end()) return "invariant 4: " + spec.name + " has no placement";
    const PlacedResource& placed = it->second;
    std::vector<std::string> running, promoted;
    for (std::size_t n = 0; n < nodes.size(); ++n) {
      const Instance& i = procs.get(static_cast<int>(n), spec.name);
      if (i.running) running.push_back(all[n]);
      if (i.promoted) promoted.push_back(all[n]);
    }
    const auto where = [&] {
      return spec.name + " placed on " + join(placed.nodes) + " promoted " + join(placed.promoted) +
             " (" + placed.reason + "), runs on " + join(running) + " promoted " + join(promoted);
    };
    if (spec.enabled) {
      const bool whole =
          spec.kind == ResourceKind::kSingleton ? placed.nodes.size() == 1 : placed.nodes == all;
      const bool promoted_ok =
          spec.kind != ResourceKind::kPromotable ||
          placed.promoted.size() == static_cast<std::size_t>(spec.promoted_max);
      if (!whole || !promoted_ok || !placed.reason.empty())
        return "invariant 4: not fully placed: " + where();
    }
    if (running != placed.nodes || promoted != placed.promoted)
      return "invariant 4: does not run where placed: " + where();
    // And what runs is what the file says (issue 12): a changed definition,
    // a `resource restart`, took effect everywhere.
    const auto g = committed.directives.restarts.find(spec.name);
    const int64_t generation = g == committed.directives.restarts.end() ? 0 : g->second;
    const std::string wanted = run_fingerprint(spec);
    for (std::size_t n = 0; n < nodes.size(); ++n) {
      const Instance& i = procs.get(static_cast<int>(n), spec.name);
      if (!i.running) continue;
      if (!i.definition || i.fingerprint != wanted || i.definition->restart_generation < generation)
        return "invariant 4: " + spec.name + " on " + all[n] +
               " runs an older definition (or was started before the newest restart)";
    }
  }
  return "";
}

}  // namespace bulwark::sim
