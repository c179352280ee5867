#include "daemon/resource_operations.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "classes/ocf/ocf_checks.h"
#include "classes/registry/agent_classes.h"
#include "coordinator/apply_plan.h"
#include "coordinator/placement_policy.h"
#include "coordinator/placement_step.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

const char* kind_name(ResourceKind k) {
  switch (k) {
    case ResourceKind::kSingleton:
      return "singleton";
    case ResourceKind::kClone:
      return "clone";
    case ResourceKind::kPromotable:
      return "promotable";
  }
  return "singleton";
}

json instance_json(const std::string& node, const InstanceStatus* st, bool node_online) {
  json j = {{"node", node},
            {"state", st ? instance_state_name(st->state) : "stopped"},
            {"fail_count", st ? st->fail_count : 0},
            {"node_online", node_online},
            {"outdated", st && st->outdated},
            {"restart_generation", st ? st->restart_generation : 0},
            {"unmanaged", st && st->unmanaged}};
  if (st && !st->last_failure.empty()) {
    j["last_failure"] = st->last_failure;
    j["last_failure_wall_ms"] = st->last_failure_wall_ms;
  }
  return j;
}

}  // namespace

ResourceOperations::ResourceOperations(const Clock& clock, Store& store,
                                       std::function<Status()> require_quorum,
                                       std::function<Result<int64_t>(Result<int64_t>)> committed,
                                       std::function<MembershipView()> view, std::string ocf_root,
                                       std::string node, std::string node_address)
    : clock_(clock),
      store_(store),
      require_quorum_(std::move(require_quorum)),
      committed_(std::move(committed)),
      view_(std::move(view)),
      ocf_root_(std::move(ocf_root)),
      node_(std::move(node)),
      node_address_(std::move(node_address)) {}

Status ResourceOperations::validate(const ResourceConfig& config, const ClusterState& state,
                                    const std::string& source,
                                    std::map<std::string, ReloadTraits>& reload,
                                    std::vector<std::string>& notes) const {
  for (const auto& l : config.locations) {
    if (!l.node.empty() && !state.nodes.count(l.node))
      return make_error(Errc::kInvalid, source + ": location of " + l.resource + " names node '" +
                                            l.node + "', which is not in the cluster");
  }
  OcfChecker ocf(ocf_root_, node_, node_address_);
  for (const auto& r : config.resources) {
    if (r.agent.agent_class != AgentClass::kOcf) continue;
    if (auto st = ocf.check(r, source + ": resource " + r.name + ": agent " + agent_name(r.agent));
        !st)
      return st;
  }
  for (const auto& [agent, traits] : ocf.reload()) reload[agent] = traits;
  notes = ocf.notes();
  // With every node up, every enabled resource must have somewhere to run:
  // otherwise the constraints contradict each other.
  PolicyInput in;
  in.config = &config;
  for (const auto& [name, n] : state.nodes) {
    PolicyNode pn;
    pn.name = name;
    pn.attributes = n.attributes;
    in.nodes.push_back(pn);
  }
  const Placement p = compute_placement(in);
  for (const auto& r : config.resources) {
    if (!r.enabled) continue;
    auto it = p.resources.find(r.name);
    if (it == p.resources.end() || it->second.nodes.empty())
      return make_error(Errc::kInvalid,
                        source + ": resource " + r.name + " cannot run on any node (" +
                            (it == p.resources.end() ? "not placed" : it->second.reason) +
                            "): check its location and colocation constraints");
  }
  return Ok{};
}

Result<json> ResourceOperations::apply(const ApplyRequest& req) {
  auto config = parse_resource_config(req.text, req.source, agent_class_syntaxes());
  if (!config) return config.error();
  ClusterState state = store_.state();
  if (state.schema_version == 0) {
    // Right after start the cache may lag: one linearizable read brings it
    // up to date.
    if (store_.confirm_fresh()) state = store_.state();
    if (state.schema_version == 0)
      return make_error(Errc::kUnavailable, "the cluster state is not initialised yet");
  }
  ResourcesRecord rec;
  rec.text = req.text;
  rec.source = req.source;
  std::vector<std::string> notes;
  if (auto st = validate(*config, state, req.source, rec.reload, notes); !st) return st.error();
  const int64_t planned_on = state.resources ? state.resources->mod_revision : 0;
  const auto changed_since = [&](int64_t expected, int64_t now) {
    return make_error(Errc::kConflict,
                      "the applied resources changed since revision " + std::to_string(expected) +
                          " (they are at revision " + std::to_string(now) +
                          (state.resources ? ", from " + state.resources->source : std::string()) +
                          "): nothing was changed; bulwark resource export shows them");
  };
  if (req.expect_revision && *req.expect_revision != planned_on)
    return changed_since(*req.expect_revision, planned_on);
  // A file that names no resource (an empty file, a file of constraints
  // only) would delete every resource: only when asked for.
  const ResourceConfig* old = state.resource_config.get();
  if (config->resources.empty() && old && !old->resources.empty() && !req.allow_delete) {
    std::string names;
    for (const auto& r : old->resources) names += (names.empty() ? "" : ", ") + r.name;
    return make_error(Errc::kInvalid,
                      req.source +
                          " names no resource: applying it would delete every "
                          "resource (" +
                          names + "); nothing was changed (give --allow-delete to do that)");
  }
  const auto next = with_reload_traits(*config, rec);
  json plan = json::array();
  for (const PlannedChange& c : plan_apply(state, view_(), *next)) {
    json e = {
        {"resource", c.resource}, {"action", c.action}, {"nodes", c.nodes}, {"detail", c.detail}};
    if (!c.from.empty()) e["from"] = c.from;
    plan.push_back(e);
  }
  const bool unchanged = state.resources && state.resources->text == req.text;
  json out = {{"ok", true},
              {"dry_run", req.dry_run},
              {"changed", !unchanged},
              {"plan", plan},
              {"revision", planned_on},
              {"source", req.source},
              {"resources", config->resources.size()},
              {"notes", notes}};
  if (req.dry_run || unchanged) return out;
  if (auto st = require_quorum_(); !st) return st.error();
  rec.applied_wall_ms = clock_.wall_ms();
  auto r = committed_(store_.put_resources([&](std::optional<ResourcesRecord>& current) -> Status {
    if (auto st = require_quorum_(); !st) return st;
    // The plan above (and the delete check) was made against one revision:
    // the write replaces that one or nothing.
    const int64_t now = current ? current->mod_revision : 0;
    if (now != planned_on) {
      if (req.expect_revision) return changed_since(*req.expect_revision, now);
      return make_error(Errc::kConflict,
                        "the applied resources changed while this apply was checked (now "
                        "revision " +
                            std::to_string(now) + "): nothing was changed; apply again");
    }
    current = rec;
    return Ok{};
  }));
  if (!r) return r.error();
  spdlog::info("api: resources from {} applied ({} resources, revision {})", req.source,
               config->resources.size(), *r);
  out["revision"] = *r;
  return out;
}

Result<json> ResourceOperations::export_resources() const {
  const ClusterState state = store_.state();
  if (!state.resources)
    return make_error(Errc::kNotFound, "no resources are applied (bulwark apply FILE)");
  return json{{"text", state.resources->text},
              {"source", state.resources->source},
              {"revision", state.resources->mod_revision},
              {"applied_wall_ms", state.resources->applied_wall_ms}};
}

json ResourceOperations::list() const {
  const ClusterState state = store_.state();
  json out;
  out["applied"] = state.resources.has_value();
  out["source"] = state.resources ? json(state.resources->source) : json(nullptr);
  out["revision"] = state.resources ? state.resources->mod_revision : 0;
  out["maintenance"] = state.directives.maintenance;
  out["placement_epoch"] = state.placement ? json(state.placement->epoch) : json(nullptr);
  // The resources revision the coordinator's newest placement is for.
  out["placement_revision"] =
      state.placement ? json(state.placement->resources_revision) : json(nullptr);
  json list = json::array();
  std::set<std::string> listed;
  // As the coordinator last saw the nodes: what an offline node's record
  // says is what it ran when it was last heard of.
  const auto online = [&](const std::string& node) {
    if (!state.liveness) return true;
    auto it = state.liveness->online.find(node);
    return it == state.liveness->online.end() || it->second;
  };
  const auto describe = [&](const std::string& name, const ResourceSpec* spec) {
    listed.insert(name);
    json r = {{"name", name}};
    if (spec) {
      r["kind"] = kind_name(spec->kind);
      r["agent"] = agent_name(spec->agent);
      const bool by_operator = state.directives.disabled.count(name) != 0;
      r["enabled"] = spec->enabled && !by_operator;
      // Who disabled it: the file (enabled: false) or `resource disable`.
      r["disabled_by"] = !spec->enabled ? json("file")
                         : by_operator  ? json("operator")
                                        : json(nullptr);
    } else {
      r["kind"] = "removed";
    }
    r["managed"] = !state.directives.maintenance && !state.directives.unmanaged.count(name);
    if (auto g = state.directives.restarts.find(name); g != state.directives.restarts.end())
      r["restart_generation"] = g->second;
    const PlacedResource* placed = nullptr;
    if (state.placement) {
      auto it = state.placement->resources.find(name);
      if (it != state.placement->resources.end()) placed = &it->second;
    }
    r["desired"] = {{"nodes", placed ? placed->nodes : std::vector<std::string>{}},
                    {"promoted", placed ? placed->promoted : std::vector<std::string>{}},
                    {"reason", placed ? placed->reason : "not placed yet"}};
    if (auto m = state.directives.moves.find(name); m != state.directives.moves.end())
      r["moved_to"] = m->second;
    if (auto b = state.directives.bans.find(name); b != state.directives.bans.end())
      r["banned_from"] = b->second;
    json instances = json::array();
    int fail_total = 0;
    for (const auto& [node, rec] : state.statuses) {
      auto it = rec.resources.find(name);
      const InstanceStatus* st = it == rec.resources.end() ? nullptr : &it->second;
      const bool desired = placed && std::find(placed->nodes.begin(), placed->nodes.end(), node) !=
                                         placed->nodes.end();
      if (st) fail_total += st->fail_count;
      if (desired || (st && (st->state != InstanceState::kStopped || st->fail_count > 0)))
        instances.push_back(instance_json(node, st, online(node)));
    }
    r["fail_count"] = fail_total;
    r["instances"] = instances;
    list.push_back(r);
  };
  if (state.resource_config) {
    for (const auto& spec : state.resource_config->resources) describe(spec.name, &spec);
  }
  for (const auto& [node, rec] : state.statuses) {
    for (const auto& [name, st] : rec.resources) {
      if (!listed.count(name) && st.state != InstanceState::kStopped) describe(name, nullptr);
    }
  }
  out["resources"] = list;
  return out;
}

Status ResourceOperations::check_move(const ClusterState& state, const std::string& resource,
                                      const std::vector<std::string>& names,
                                      const std::string& node) const {
  const ResourceConfig& config = *state.resource_config;
  const auto refuse = [&](const std::string& why) {
    return make_error(Errc::kInvalid, "cannot move " + resource + " to " + node + ": " + why +
                                          "; nothing was changed");
  };
  if (state.directives.maintenance)
    return refuse(
        "the cluster is in maintenance mode (nothing moves until bulwark maintenance off)");
  if (auto n = state.nodes.find(node); n != state.nodes.end()) {
    if (n->second.mode == NodeMode::kMaintenance)
      return refuse("node " + node + " is in maintenance (nothing starts there)");
  }
  for (const auto& name : names) {
    const ResourceSpec* spec = config.find(name);
    if (state.directives.unmanaged.count(name))
      return refuse(name + " is unmanaged (bulwark resource manage " + name + ")");
    // A clone on every eligible node has nowhere to move to: a ban keeps
    // it off a node, a move only makes sense with `max`.
    if (spec && spec->kind != ResourceKind::kSingleton && spec->clone_max == 0)
      return refuse(name + " is a " +
                    (spec->kind == ResourceKind::kClone ? "clone" : "promotable") +
                    " that runs on every eligible node; move has nothing to do (use ban to keep "
                    "it off a node)");
  }
  // The coordinator's own policy, with the move in place, on what this node
  // sees: does it put the resource there?
  PolicyInputs in = policy_inputs(state, view_(), config);
  for (const auto& name : names) {
    in.input.moves[name] = node;
    if (auto b = in.input.bans.find(name); b != in.input.bans.end()) b->second.erase(node);
  }
  if (std::string why = placement_obstacle(in.input, resource, node); !why.empty())
    return refuse(why);
  // A singleton stops where it runs before it starts elsewhere: where it
  // goes is where the policy puts it once stopped.
  for (const auto& name : names) in.input.running.erase(name);
  const Placement p = compute_placement(in.input);
  for (const auto& name : names) {
    auto it = p.resources.find(name);
    const bool there =
        it != p.resources.end() &&
        std::find(it->second.nodes.begin(), it->second.nodes.end(), node) != it->second.nodes.end();
    if (!there)
      return refuse(it == p.resources.end() || it->second.reason.empty()
                        ? "the placement policy does not put it there"
                        : it->second.reason);
  }
  return Ok{};
}

Result<json> ResourceOperations::directive(const DirectiveRequest& req) {
  const ClusterState state = store_.state();
  if (!state.resource_config)
    return make_error(Errc::kNotFound, "no resources are applied (bulwark apply FILE)");
  const ResourceConfig& config = *state.resource_config;
  const std::string& action = req.action;
  // A group's directive applies to each of its members; cleanup without a
  // name to every resource.
  std::vector<std::string> names;
  if (req.resource.empty() && action == "cleanup") {
    for (const auto& r : config.resources) names.push_back(r.name);
  } else if (const GroupSpec* g = config.find_group(req.resource)) {
    names = g->resources;
  } else if (config.find(req.resource)) {
    names = {req.resource};
  } else {
    return make_error(Errc::kNotFound, "no resource or group named '" + req.resource + "'");
  }
  const std::string what = req.resource.empty() ? "every resource" : req.resource;
  const bool needs_node = action == "move" || action == "ban";
  if (needs_node && req.node.empty())
    return make_error(Errc::kInvalid, action + " needs a node (--node NAME)");
  if (needs_node && !state.nodes.count(req.node))
    return make_error(Errc::kNotFound, "no node named '" + req.node + "'");
  // Where each runs now, for messages.
  const auto running_on = [&](const std::string& name, bool blocked_only) {
    std::vector<std::string> out;
    for (const auto& [node, rec] : state.statuses) {
      auto it = rec.resources.find(name);
      if (it == rec.resources.end() || it->second.state == InstanceState::kStopped) continue;
      if (blocked_only && it->second.state != InstanceState::kBlocked) continue;
      out.push_back(node);
    }
    return out;
  };
  const auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  };
  std::string message;
  if (action == "move") {
    if (auto st = check_move(state, req.resource, names, req.node); !st) return st.error();
    const auto now = running_on(names.front(), false);
    message = now == std::vector<std::string>{req.node}
                  ? req.resource + " already runs on " + req.node + "; it stays there until " +
                        "bulwark resource clear " + req.resource
                  : req.resource + " moves to " + req.node + " (until bulwark resource clear " +
                        req.resource + ")";
  } else if (action == "ban") {
    message = req.resource + " is banned from " + req.node + " (until bulwark resource clear " +
              req.resource + ")";
  } else if (action == "clear") {
    message = req.resource + " has no moves or bans any more";
  } else if (action == "cleanup") {
    message = "fail counts of " + what + " reset on every node";
    for (const auto& name : names) {
      const auto blocked = running_on(name, true);
      if (blocked.empty()) continue;
      message += req.force ? "; " + name + " on " + join(blocked) +
                                 " counted as stopped, as the operator says"
                           : "; " + name + " is blocked on " + join(blocked) +
                                 " (its stop failed): its stop is tried again; if it fails "
                                 "again, check that it is stopped there and run bulwark resource "
                                 "cleanup " +
                                 name + " --force";
    }
  } else if (action == "restart") {
    if (state.directives.maintenance)
      return make_error(Errc::kInvalid, "the cluster is in maintenance mode: nothing restarts");
    std::vector<std::string> where;
    for (const auto& name : names) {
      if (state.directives.unmanaged.count(name))
        return make_error(
            Errc::kInvalid,
            name + " is unmanaged: nothing restarts (bulwark resource manage " + name + ")");
      for (const auto& n : running_on(name, false)) {
        if (std::find(where.begin(), where.end(), n) == where.end()) where.push_back(n);
      }
    }
    if (where.empty())
      return make_error(Errc::kInvalid, req.resource + " runs nowhere: nothing to restart");
    message =
        req.resource + " restarts on " + join(where) +
        (config.find(req.resource) && config.find(req.resource)->kind != ResourceKind::kSingleton
             ? " (one instance at a time)"
             : "");
  } else if (action == "enable") {
    for (const auto& name : names) {
      if (!config.find(name)->enabled)
        return make_error(Errc::kInvalid,
                          name + " is disabled in the resources file (enabled: false, revision " +
                              std::to_string(state.resources->mod_revision) +
                              "): set it there and apply the file");
    }
    message = req.resource + " is enabled: it runs where the cluster places it";
  } else if (action == "disable") {
    const auto where = running_on(names.front(), false);
    message = req.resource + " is disabled" +
              (where.empty() ? std::string(": it runs nowhere") : ": it stops on " + join(where));
  } else if (action == "manage") {
    message = req.resource + " is managed again: the cluster acts on it from what runs now";
  } else if (action == "unmanage") {
    message = req.resource +
              " is unmanaged: it is left as it runs (no monitors, starts, stops or restarts)";
  } else {
    return make_error(Errc::kInvalid, "unknown action '" + action + "'");
  }
  if (auto st = require_quorum_(); !st) return st.error();
  auto r = committed_(store_.update_directives([&](DirectivesRecord& d) -> Status {
    if (auto st = require_quorum_(); !st) return st;
    for (const auto& name : names) {
      if (action == "move") {
        d.moves[name] = req.node;
        if (auto b = d.bans.find(name); b != d.bans.end()) {
          b->second.erase(req.node);
          if (b->second.empty()) d.bans.erase(b);
        }
      } else if (action == "ban") {
        d.bans[name].insert(req.node);
        if (auto m = d.moves.find(name); m != d.moves.end() && m->second == req.node)
          d.moves.erase(m);
      } else if (action == "clear") {
        d.moves.erase(name);
        d.bans.erase(name);
      } else if (action == "cleanup") {
        ++d.cleanups[name];
        if (req.force) ++d.forced_cleanups[name];
      } else if (action == "restart") {
        ++d.restarts[name];
      } else if (action == "enable") {
        d.disabled.erase(name);
      } else if (action == "disable") {
        d.disabled.insert(name);
      } else if (action == "manage") {
        d.unmanaged.erase(name);
      } else if (action == "unmanage") {
        d.unmanaged.insert(name);
      }
    }
    return Ok{};
  }));
  if (!r) return r.error();
  spdlog::info("api: {} {}: {}", action, what, message);
  return json{{"ok", true}, {"revision", *r}, {"message", message}};
}

Result<int64_t> ResourceOperations::set_maintenance(bool enabled) {
  if (auto st = require_quorum_(); !st) return st.error();
  return committed_(store_.update_directives([&](DirectivesRecord& d) -> Status {
    if (auto st = require_quorum_(); !st) return st;
    d.maintenance = enabled;
    return Ok{};
  }));
}

Result<int64_t> ResourceOperations::set_node_mode(const std::string& node,
                                                  const std::string& mode) {
  const auto m = parse_node_mode(mode);
  if (!m) return make_error(Errc::kInvalid, "mode must be online, standby or maintenance");
  if (auto st = require_quorum_(); !st) return st.error();
  return committed_(store_.update_node(node, [&](NodeRecord& n) -> Status {
    if (auto st = require_quorum_(); !st) return st;
    n.mode = *m;
    return Ok{};
  }));
}

}  // namespace bulwark
