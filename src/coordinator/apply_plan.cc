#include "coordinator/apply_plan.h"

#include <algorithm>
#include <set>

#include "coordinator/placement_policy.h"
#include "coordinator/placement_step.h"
#include "core/resource_change.h"

namespace bulwark {
namespace {

using Nodes = std::vector<std::string>;

Nodes minus(const Nodes& a, const Nodes& b) {
  Nodes out;
  for (const auto& n : a) {
    if (std::find(b.begin(), b.end(), n) == b.end()) out.push_back(n);
  }
  return out;
}

Nodes both(const Nodes& a, const Nodes& b) {
  Nodes out;
  for (const auto& n : a) {
    if (std::find(b.begin(), b.end(), n) != b.end()) out.push_back(n);
  }
  return out;
}

// Nodes where an instance of `resource` may run now (any state but stopped).
Nodes running_on(const ClusterState& state, const std::string& resource) {
  Nodes out;
  for (const auto& [node, rec] : state.statuses) {
    auto it = rec.resources.find(resource);
    if (it != rec.resources.end() && it->second.state != InstanceState::kStopped)
      out.push_back(node);
  }
  return out;
}

// Where the coordinator would place everything with `config`. A singleton
// that moves is first placed nowhere ("stopping on A before it starts on
// B"): where it then goes is what it would be placed on once stopped.
Placement placement_with(const ClusterState& state, const MembershipView& view,
                         const ResourceConfig* config) {
  if (!config) return {};
  PolicyInput in = policy_inputs(state, view, *config).input;
  Placement p = compute_placement(in);
  std::vector<std::string> moving;
  for (const auto& [name, placed] : p.resources) {
    if (placed.nodes.empty() && in.running.count(name)) moving.push_back(name);
  }
  if (moving.empty()) return p;
  for (const auto& name : moving) in.running.erase(name);
  const Placement settled = compute_placement(in);
  for (const auto& name : moving) {
    auto it = settled.resources.find(name);
    if (it != settled.resources.end() && !it->second.nodes.empty()) p.resources[name] = it->second;
  }
  return p;
}

const ResourcePlacement* find(const Placement& p, const std::string& name) {
  auto it = p.resources.find(name);
  return it == p.resources.end() ? nullptr : &it->second;
}

}  // namespace

std::vector<PlannedChange> plan_apply(const ClusterState& state, const MembershipView& view,
                                      const ResourceConfig& next) {
  const ResourceConfig* old = state.resource_config.get();
  const Placement before = placement_with(state, view, old);
  const Placement after = placement_with(state, view, &next);
  std::vector<PlannedChange> out;
  const auto add = [&out](std::string resource, std::string action, Nodes nodes, std::string detail,
                          Nodes from = {}) {
    out.push_back(PlannedChange{std::move(resource), std::move(action), std::move(nodes),
                                std::move(from), std::move(detail)});
  };
  for (const ResourceSpec& spec : next.resources) {
    const ResourcePlacement* to = find(after, spec.name);
    const Nodes to_nodes = to ? to->nodes : Nodes{};
    const Nodes to_promoted = to ? to->promoted : Nodes{};
    const std::string reason = to ? to->reason : "";
    const ResourceSpec* was = old ? old->find(spec.name) : nullptr;
    if (!was) {
      if (to_nodes.empty()) {
        add(spec.name, "add", {}, "new resource; runs nowhere: " + (reason.empty() ? "-" : reason));
        continue;
      }
      add(spec.name, "start", to_nodes, "new resource");
      if (!to_promoted.empty()) add(spec.name, "promote", to_promoted, "new resource");
      continue;
    }
    const ResourcePlacement* from = find(before, spec.name);
    const Nodes from_nodes = from ? from->nodes : Nodes{};
    const Nodes from_promoted = from ? from->promoted : Nodes{};
    const Nodes running = running_on(state, spec.name);
    const SpecChange change = compare_specs(*was, spec);
    // Instances that run and stay where they are: these restart or reload.
    const Nodes staying = both(running, to_nodes);
    if (change.effect == ChangeEffect::kRestart && !staying.empty()) {
      add(spec.name, "restart", staying,
          change.describe() + " changed" +
              (spec.kind == ResourceKind::kSingleton ? "" : "; one instance at a time"));
    } else if (change.effect == ChangeEffect::kReload && !staying.empty()) {
      add(spec.name, "reload", staying, change.describe() + " changed; the agent reloads them");
    } else if (change.effect != ChangeEffect::kNone &&
               (change.effect == ChangeEffect::kUpdate || staying.empty())) {
      add(spec.name, "update", {}, change.describe() + " changed; nothing restarts");
    }
    const Nodes started = minus(to_nodes, from_nodes);
    const Nodes stopped = minus(from_nodes, to_nodes);
    const std::string why_stopped =
        to_nodes.empty() && !reason.empty() ? reason : std::string("placement changed");
    if (spec.kind == ResourceKind::kSingleton && !started.empty() && !stopped.empty()) {
      add(spec.name, "move", started, "placement changed", stopped);
    } else {
      if (!stopped.empty()) add(spec.name, "stop", stopped, why_stopped);
      if (!started.empty()) add(spec.name, "start", started, "placement changed");
    }
    if (const Nodes demoted = minus(from_promoted, to_promoted); !demoted.empty())
      add(spec.name, "demote", demoted, "placement changed");
    if (const Nodes promoted = minus(to_promoted, from_promoted); !promoted.empty())
      add(spec.name, "promote", promoted, "placement changed");
  }
  if (old) {
    for (const ResourceSpec& spec : old->resources) {
      if (next.find(spec.name)) continue;
      const Nodes running = running_on(state, spec.name);
      add(spec.name, "delete", running,
          running.empty() ? "removed from the file; runs nowhere"
                          : "removed from the file; stops where it runs");
    }
  }
  return out;
}

}  // namespace bulwark
