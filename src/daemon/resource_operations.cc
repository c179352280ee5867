#include "daemon/resource_operations.h"

#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "coordinator/placement_policy.h"
#include "proxy/proxy_config.h"
#include "sys/process.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

// An agent's meta-data is static text; a slower answer is a broken agent.
constexpr int kMetaDataTimeoutMs = 5000;

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

std::string agent_name(const AgentSpec& a) {
  switch (a.agent_class) {
    case AgentClass::kExec:
      return "exec";
    case AgentClass::kOcf:
      return "ocf:" + a.provider + ":" + a.type;
    case AgentClass::kSystemd:
      return "systemd:" + a.unit;
    case AgentClass::kVip:
      return "vip";
    case AgentClass::kProxy:
      return "proxy";
  }
  return "exec";
}

json instance_json(const std::string& node, const InstanceStatus* st, bool node_online) {
  json j = {{"node", node},
            {"state", st ? instance_state_name(st->state) : "stopped"},
            {"fail_count", st ? st->fail_count : 0},
            {"node_online", node_online}};
  if (st && !st->last_failure.empty()) {
    j["last_failure"] = st->last_failure;
    j["last_failure_wall_ms"] = st->last_failure_wall_ms;
  }
  return j;
}

}  // namespace

Result<ResourceOperations::OcfParameters> ResourceOperations::ocf_parameters(
    const std::string& script) const {
  SpawnOptions o;
  o.argv = {script, "meta-data"};
  o.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "OCF_ROOT=" + ocf_root_,
           "OCF_FUNCTIONS_DIR=" + ocf_root_ + "/lib/heartbeat"};
  auto out = run_command(o, kMetaDataTimeoutMs);
  if (!out) return make_error(Errc::kInvalid, "meta-data: " + out.error().message);
  if (!WIFEXITED(out->wait_status) || WEXITSTATUS(out->wait_status) != 0)
    return make_error(Errc::kInvalid,
                      "meta-data failed (" + describe_wait_status(out->wait_status) + ")");
  // <parameter name="ip" unique="1" required="1"> and <action name="notify"
  // timeout="5s"/> elements, read without an XML library: the attributes
  // Bulwark needs are plain name="value" pairs.
  OcfParameters p;
  const std::string& x = out->output;
  const auto each_tag = [&x](const std::string& element, const auto& fn) {
    for (std::size_t pos = 0; (pos = x.find("<" + element + " ", pos)) != std::string::npos;) {
      const std::size_t end = x.find('>', pos);
      if (end == std::string::npos) break;
      const std::string tag = x.substr(pos, end - pos);
      pos = end;
      fn([&tag](const std::string& name) -> std::string {
        const std::string key = " " + name + "=\"";
        const auto a = tag.find(key);
        if (a == std::string::npos) return "";
        const auto b = tag.find('"', a + key.size());
        return b == std::string::npos ? "" : tag.substr(a + key.size(), b - a - key.size());
      });
    }
  };
  each_tag("parameter", [&p](const auto& attr) {
    const std::string name = attr("name");
    if (name.empty()) return;
    p.all.insert(name);
    if (attr("required") == "1") p.required.insert(name);
  });
  each_tag("action", [&p](const auto& attr) {
    if (const std::string name = attr("name"); !name.empty()) p.actions.insert(name);
  });
  return p;
}

Status ResourceOperations::ocf_validate(const std::string& script, const ResourceSpec& r) const {
  // The agent's own check of its parameters. Only OCF_ERR_CONFIGURED (6),
  // "invalid everywhere", refuses the file: OCF_ERR_ARGS (2) and
  // OCF_ERR_INSTALLED (5) may hold on this node alone (a missing interface,
  // a missing binary), not on the nodes that will run it.
  constexpr int kOcfErrConfigured = 6;
  char dir[] = "/tmp/bulwark-validate-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return Ok{};  // no check rather than a false refusal
  SpawnOptions o;
  o.argv = {script, "validate-all"};
  o.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG=C.UTF-8",
           "OCF_ROOT=" + ocf_root_,
           "OCF_FUNCTIONS_DIR=" + ocf_root_ + "/lib/heartbeat",
           "OCF_RESOURCE_INSTANCE=" + r.name,
           std::string("HA_RSCTMP=") + dir};
  // ${BULWARK_...} in params are per node: left as written for this check.
  for (const auto& [k, v] : r.agent.params) o.env.push_back("OCF_RESKEY_" + k + "=" + v);
  auto out = run_command(o, kMetaDataTimeoutMs);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!out || !WIFEXITED(out->wait_status) || WEXITSTATUS(out->wait_status) != kOcfErrConfigured)
    return Ok{};
  // What the agent said, on one line (its ERROR lines and exit reason).
  std::string reason;
  std::istringstream lines(out->output);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    reason += (reason.empty() ? "" : "; ") + line;
  }
  if (reason.size() > 300) reason = reason.substr(0, 300) + "...";
  return make_error(Errc::kInvalid, "validate-all says the configuration is invalid (OCF exit 6)" +
                                        (reason.empty() ? std::string() : ": " + reason));
}

ResourceOperations::ResourceOperations(const Clock& clock, Store& store,
                                       std::function<Status()> require_quorum,
                                       std::function<Result<int64_t>(Result<int64_t>)> committed,
                                       std::string ocf_root)
    : clock_(clock),
      store_(store),
      require_quorum_(std::move(require_quorum)),
      committed_(std::move(committed)),
      ocf_root_(std::move(ocf_root)) {}

Status ResourceOperations::validate(const ResourceConfig& config, const ClusterState& state,
                                    const std::string& source) const {
  for (const auto& l : config.locations) {
    if (!l.node.empty() && !state.nodes.count(l.node))
      return make_error(Errc::kInvalid, source + ": location of " + l.resource + " names node '" +
                                            l.node + "', which is not in the cluster");
  }
  std::map<std::string, Result<OcfParameters>> described;  // by agent, each asked once
  for (const auto& r : config.resources) {
    if (r.agent.agent_class != AgentClass::kOcf) continue;
    const std::string script = ocf_root_ + "/resource.d/" + r.agent.provider + "/" + r.agent.type;
    const std::string what = source + ": resource " + r.name + ": agent " + agent_name(r.agent);
    if (::access(script.c_str(), X_OK) != 0)
      return make_error(Errc::kInvalid,
                        what + " is not installed (no " + script + " on this node)");
    // The agent's own meta-data says which parameters it takes: a typo in a
    // parameter name, or a missing required one, fails here, not at start.
    auto it = described.find(script);
    if (it == described.end()) it = described.emplace(script, ocf_parameters(script)).first;
    if (!it->second) return make_error(Errc::kInvalid, what + ": " + it->second.error().message);
    const OcfParameters& known = *it->second;
    for (const auto& [k, v] : r.agent.params) {
      if (!known.all.count(k)) {
        std::string list;
        for (const auto& p : known.all) list += (list.empty() ? "" : ", ") + p;
        return make_error(Errc::kInvalid, what + " has no parameter '" + k + "' (it takes: " +
                                              (list.empty() ? "none" : list) + ")");
      }
    }
    for (const auto& k : known.required) {
      if (!r.agent.params.count(k))
        return make_error(Errc::kInvalid, what + " needs parameter '" + k + "'");
    }
    // What the resource asks of the agent, the agent must offer.
    std::vector<std::string> needed;
    if (r.kind == ResourceKind::kPromotable) needed = {"promote", "demote"};
    if (r.notify) needed.push_back("notify");
    for (const auto& action : needed) {
      if (!known.actions.count(action))
        return make_error(Errc::kInvalid,
                          what + " has no " + action + " action in its meta-data (" +
                              (action == "notify" ? "notify: true" : "promotable") + " needs it)");
    }
    if (auto st = ocf_validate(script, r); !st)
      return make_error(Errc::kInvalid, what + ": " + st.error().message);
  }
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

Result<int64_t> ResourceOperations::apply(const std::string& text, const std::string& source) {
  auto config = parse_resource_config(text, source, proxy::check_cluster_proxy_section);
  if (!config) return config.error();
  ClusterState state = store_.state();
  if (state.schema_version == 0) {
    // Right after start the cache may lag: one linearizable read brings it
    // up to date.
    if (store_.confirm_fresh()) state = store_.state();
    if (state.schema_version == 0)
      return make_error(Errc::kUnavailable, "the cluster state is not initialised yet");
  }
  if (auto st = validate(*config, state, source); !st) return st.error();
  if (auto st = require_quorum_(); !st) return st.error();
  ResourcesRecord rec;
  rec.text = text;
  rec.source = source;
  rec.applied_wall_ms = clock_.wall_ms();
  auto r = committed_(store_.put_resources(rec, require_quorum_));
  if (r)
    spdlog::info("api: resources from {} applied ({} resources)", source, config->resources.size());
  return r;
}

json ResourceOperations::list() const {
  const ClusterState state = store_.state();
  json out;
  out["applied"] = state.resources.has_value();
  out["source"] = state.resources ? json(state.resources->source) : json(nullptr);
  out["revision"] = state.resources ? state.resources->mod_revision : 0;
  out["maintenance"] = state.directives.maintenance;
  out["placement_epoch"] = state.placement ? json(state.placement->epoch) : json(nullptr);
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
      r["enabled"] = spec->enabled;
    } else {
      r["kind"] = "removed";
    }
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

Result<int64_t> ResourceOperations::directive(const std::string& resource,
                                              const std::string& action, const std::string& node) {
  const ClusterState state = store_.state();
  if (!state.resource_config)
    return make_error(Errc::kNotFound, "no resources are applied (bulwark apply FILE)");
  // A group's directive applies to each of its members.
  std::vector<std::string> names;
  if (const GroupSpec* g = state.resource_config->find_group(resource)) {
    names = g->resources;
  } else if (state.resource_config->find(resource)) {
    names = {resource};
  } else {
    return make_error(Errc::kNotFound, "no resource or group named '" + resource + "'");
  }
  const bool needs_node = action == "move" || action == "ban";
  if (needs_node && node.empty())
    return make_error(Errc::kInvalid, action + " needs a node (--node NAME)");
  if (needs_node && !state.nodes.count(node))
    return make_error(Errc::kNotFound, "no node named '" + node + "'");
  if (auto st = require_quorum_(); !st) return st.error();
  return committed_(store_.update_directives([&](DirectivesRecord& d) -> Status {
    if (auto st = require_quorum_(); !st) return st;
    for (const auto& name : names) {
      if (action == "move") {
        d.moves[name] = node;
        if (auto b = d.bans.find(name); b != d.bans.end()) {
          b->second.erase(node);
          if (b->second.empty()) d.bans.erase(b);
        }
      } else if (action == "ban") {
        d.bans[name].insert(node);
        if (auto m = d.moves.find(name); m != d.moves.end() && m->second == node) d.moves.erase(m);
      } else if (action == "clear") {
        d.moves.erase(name);
        d.bans.erase(name);
      } else if (action == "cleanup") {
        ++d.cleanups[name];
      } else {
        return make_error(Errc::kInvalid, "unknown action '" + action + "'");
      }
    }
    return Ok{};
  }));
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
