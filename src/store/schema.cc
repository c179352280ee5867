#include "store/schema.h"

#include <nlohmann/json.hpp>

#include "core/json_input.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

json ports_json(const Ports& p) {
  return {{"api", p.api},
          {"heartbeat", p.heartbeat},
          {"etcd_client", p.etcd_client},
          {"etcd_peer", p.etcd_peer}};
}

template <class T>
Result<T> parse_with(const std::string& value, const char* what,
                     const std::function<T(const json&)>& fn) {
  const json j = parse_json_input(value);
  if (!j.is_object())
    return make_error(Errc::kInvalid,
                      std::string(what) + ": not a JSON object, or a number out of range");
  try {
    return fn(j);
  } catch (const json::exception& e) {
    return make_error(Errc::kInvalid, std::string(what) + ": " + e.what());
  }
}

// Decodes one record into `out` with its revision, or records why not.
template <class T>
void decode_into(ClusterState& s, const KeyValue& kv, Result<T> (*decode)(const std::string&),
                 std::optional<T>& out) {
  auto r = decode(kv.value);
  if (!r) {
    s.errors.push_back(kv.key + ": " + r.error().message);
    return;
  }
  r->mod_revision = kv.mod_revision;
  out = std::move(*r);
}

}  // namespace

const char* node_mode_name(NodeMode mode) {
  switch (mode) {
    case NodeMode::kOnline:
      return "online";
    case NodeMode::kStandby:
      return "standby";
    case NodeMode::kMaintenance:
      return "maintenance";
  }
  return "online";
}

std::optional<NodeMode> parse_node_mode(const std::string& s) {
  if (s == "online") return NodeMode::kOnline;
  if (s == "standby") return NodeMode::kStandby;
  if (s == "maintenance") return NodeMode::kMaintenance;
  return std::nullopt;
}

const char* instance_state_name(InstanceState state) {
  switch (state) {
    case InstanceState::kStopped:
      return "stopped";
    case InstanceState::kStarting:
      return "starting";
    case InstanceState::kStarted:
      return "started";
    case InstanceState::kPromoted:
      return "promoted";
    case InstanceState::kStopping:
      return "stopping";
    case InstanceState::kFailed:
      return "failed";
    case InstanceState::kBlocked:
      return "blocked";
  }
  return "stopped";
}

std::optional<InstanceState> parse_instance_state(const std::string& s) {
  for (auto st : {InstanceState::kStopped, InstanceState::kStarting, InstanceState::kStarted,
                  InstanceState::kPromoted, InstanceState::kStopping, InstanceState::kFailed,
                  InstanceState::kBlocked}) {
    if (s == instance_state_name(st)) return st;
  }
  return std::nullopt;
}

std::string Schema::encode_schema(const std::string& cluster) const {
  return json{{"version", kSchemaVersion}, {"cluster", cluster}}.dump();
}

std::string Schema::encode_node(const NodeRecord& n) {
  return json{{"name", n.name},
              {"address", n.address},
              {"attributes", n.attributes},
              {"mode", node_mode_name(n.mode)},
              {"ports", ports_json(n.ports)},
              {"uid", n.uid}}
      .dump();
}

Result<NodeRecord> Schema::decode_node(const std::string& value) {
  return parse_with<NodeRecord>(value, "node record", [](const json& j) {
    NodeRecord n;
    n.name = j.at("name").get<std::string>();
    n.address = j.at("address").get<std::string>();
    n.attributes = j.value("attributes", std::map<std::string, std::string>{});
    const auto mode = parse_node_mode(j.value("mode", "online"));
    if (!mode) throw json::type_error::create(302, "unknown node mode", &j);
    n.mode = *mode;
    const json p = j.value("ports", json::object());
    n.ports.api = p.value("api", n.ports.api);
    n.ports.heartbeat = p.value("heartbeat", n.ports.heartbeat);
    n.ports.etcd_client = p.value("etcd_client", n.ports.etcd_client);
    n.ports.etcd_peer = p.value("etcd_peer", n.ports.etcd_peer);
    n.uid = j.value("uid", "");
    return n;
  });
}

std::string Schema::encode_coordinator(const CoordinatorRecord& r) {
  return json{{"node", r.node}, {"epoch", r.epoch}, {"acquired_wall_ms", r.acquired_wall_ms}}
      .dump();
}

Result<CoordinatorRecord> Schema::decode_coordinator(const std::string& value) {
  return parse_with<CoordinatorRecord>(value, "coordinator record", [](const json& j) {
    CoordinatorRecord r;
    r.node = j.at("node").get<std::string>();
    r.epoch = j.at("epoch").get<int64_t>();
    r.acquired_wall_ms = j.value("acquired_wall_ms", int64_t{0});
    return r;
  });
}

std::string Schema::encode_liveness(const LivenessRecord& r) {
  return json{{"epoch", r.epoch}, {"online", r.online}}.dump();
}

Result<LivenessRecord> Schema::decode_liveness(const std::string& value) {
  return parse_with<LivenessRecord>(value, "liveness record", [](const json& j) {
    LivenessRecord r;
    r.epoch = j.at("epoch").get<int64_t>();
    r.online = j.at("online").get<std::map<std::string, bool>>();
    return r;
  });
}

std::string Schema::encode_resources(const ResourcesRecord& r) {
  json j = {{"text", r.text}, {"source", r.source}, {"applied_wall_ms", r.applied_wall_ms}};
  if (!r.reload.empty()) {
    json reload = json::object();
    for (const auto& [agent, t] : r.reload)
      reload[agent] = {{"action", t.action}, {"params", t.params}};
    j["reload"] = reload;
  }
  return j.dump();
}

Result<ResourcesRecord> Schema::decode_resources(const std::string& value) {
  return parse_with<ResourcesRecord>(value, "resources record", [](const json& j) {
    ResourcesRecord r;
    r.text = j.at("text").get<std::string>();
    r.source = j.value("source", "");
    r.applied_wall_ms = j.value("applied_wall_ms", int64_t{0});
    const json reload = j.value("reload", json::object());
    for (const auto& [agent, t] : reload.items()) {
      ReloadTraits traits;
      traits.action = t.at("action").get<std::string>();
      traits.params = t.value("params", std::set<std::string>{});
      r.reload[agent] = std::move(traits);
    }
    return r;
  });
}

std::shared_ptr<const ResourceConfig> with_reload_traits(ResourceConfig config,
                                                         const ResourcesRecord& record) {
  for (auto& r : config.resources) {
    if (r.agent.agent_class != AgentClass::kOcf) continue;
    auto it = record.reload.find(agent_name(r.agent));
    if (it != record.reload.end()) r.agent.reload = it->second;
  }
  return std::make_shared<const ResourceConfig>(std::move(config));
}

std::string Schema::encode_directives(const DirectivesRecord& r) {
  return json{{"moves", r.moves},         {"bans", r.bans},
              {"cleanups", r.cleanups},   {"forced_cleanups", r.forced_cleanups},
              {"restarts", r.restarts},   {"disabled", r.disabled},
              {"unmanaged", r.unmanaged}, {"maintenance", r.maintenance}}
      .dump();
}

Result<DirectivesRecord> Schema::decode_directives(const std::string& value) {
  return parse_with<DirectivesRecord>(value, "directives record", [](const json& j) {
    DirectivesRecord r;
    r.moves = j.value("moves", std::map<std::string, std::string>{});
    r.bans = j.value("bans", std::map<std::string, std::set<std::string>>{});
    r.cleanups = j.value("cleanups", std::map<std::string, int64_t>{});
    r.forced_cleanups = j.value("forced_cleanups", std::map<std::string, int64_t>{});
    r.restarts = j.value("restarts", std::map<std::string, int64_t>{});
    r.disabled = j.value("disabled", std::set<std::string>{});
    r.unmanaged = j.value("unmanaged", std::set<std::string>{});
    r.maintenance = j.value("maintenance", false);
    return r;
  });
}

std::string Schema::encode_placement(const PlacementRecord& r) {
  json res = json::object();
  for (const auto& [name, p] : r.resources) {
    json e = {{"nodes", p.nodes}};
    if (!p.promoted.empty()) e["promoted"] = p.promoted;
    if (!p.reason.empty()) e["reason"] = p.reason;
    res[name] = e;
  }
  return json{{"epoch", r.epoch}, {"resources_revision", r.resources_revision}, {"resources", res}}
      .dump();
}

Result<PlacementRecord> Schema::decode_placement(const std::string& value) {
  return parse_with<PlacementRecord>(value, "placement record", [](const json& j) {
    PlacementRecord r;
    r.epoch = j.at("epoch").get<int64_t>();
    r.resources_revision = j.at("resources_revision").get<int64_t>();
    for (const auto& [name, e] : j.at("resources").items()) {
      PlacedResource p;
      p.nodes = e.at("nodes").get<std::vector<std::string>>();
      p.promoted = e.value("promoted", std::vector<std::string>{});
      p.reason = e.value("reason", "");
      r.resources[name] = std::move(p);
    }
    return r;
  });
}

std::string Schema::encode_status(const NodeStatusRecord& r) {
  json res = json::object();
  for (const auto& [name, st] : r.resources) {
    json e = {{"state", instance_state_name(st.state)}, {"fail_count", st.fail_count}};
    if (st.promoted) e["promoted"] = true;
    if (!st.last_failure.empty()) {
      e["last_failure"] = st.last_failure;
      e["last_failure_wall_ms"] = st.last_failure_wall_ms;
    }
    if (st.cleanup_generation != 0) e["cleanup_generation"] = st.cleanup_generation;
    if (st.claim_pending) e["claim_pending"] = true;
    if (st.outdated) e["outdated"] = true;
    if (st.restart_generation != 0) e["restart_generation"] = st.restart_generation;
    if (!st.definition.empty()) e["definition"] = st.definition;
    if (st.unmanaged) e["unmanaged"] = true;
    if (!st.notify.empty()) {
      const NotifyStatus& n = st.notify;
      e["notify"] = {{"pending", n.pending},
                     {"pending_seq", n.pending_seq},
                     {"done", n.done},
                     {"done_seq", n.done_seq},
                     {"told", n.told}};
    }
    res[name] = e;
  }
  json j = {{"incarnation", r.incarnation}, {"probed", r.probed}, {"resources", res}};
  if (!r.voided.empty()) j["voided"] = r.voided;
  return j.dump();
}

Result<NodeStatusRecord> Schema::decode_status(const std::string& value) {
  return parse_with<NodeStatusRecord>(value, "status record", [](const json& j) {
    NodeStatusRecord r;
    r.incarnation = j.value("incarnation", uint64_t{0});
    r.probed = j.value("probed", false);
    r.voided = j.value("voided", "");
    for (const auto& [name, e] : j.at("resources").items()) {
      InstanceStatus st;
      const auto state = parse_instance_state(e.at("state").get<std::string>());
      if (!state) throw json::type_error::create(302, "unknown instance state", &e);
      st.state = *state;
      st.fail_count = e.value("fail_count", 0);
      st.promoted = e.value("promoted", false);
      st.last_failure = e.value("last_failure", "");
      st.last_failure_wall_ms = e.value("last_failure_wall_ms", int64_t{0});
      st.cleanup_generation = e.value("cleanup_generation", int64_t{0});
      st.claim_pending = e.value("claim_pending", false);
      st.outdated = e.value("outdated", false);
      st.restart_generation = e.value("restart_generation", int64_t{0});
      st.definition = e.value("definition", "");
      st.unmanaged = e.value("unmanaged", false);
      if (const auto n = e.find("notify"); n != e.end()) {
        st.notify.pending = n->value("pending", "");
        st.notify.pending_seq = n->value("pending_seq", int64_t{0});
        st.notify.done = n->value("done", "");
        st.notify.done_seq = n->value("done_seq", int64_t{0});
        st.notify.told = n->value("told", std::map<std::string, int64_t>{});
      }
      r.resources[name] = st;
    }
    return r;
  });
}

ClusterState Schema::build_state(const std::map<std::string, KeyValue>& kvs,
                                 int64_t revision) const {
  ClusterState s;
  s.loaded = true;
  s.revision = revision;
  for (const auto& [key, kv] : kvs) {
    if (key == schema_key()) {
      const json j = parse_json_input(kv.value);
      if (j.is_object() && j.contains("version") && j["version"].is_number_integer()) {
        s.schema_version = j["version"].get<int>();
        s.cluster_name = j.value("cluster", "");
      } else {
        s.errors.push_back(key + ": malformed schema record");
      }
    } else if (key.rfind(nodes_prefix(), 0) == 0) {
      s.node_keys.insert(key.substr(nodes_prefix().size()));
      auto n = decode_node(kv.value);
      if (!n || n->name != key.substr(nodes_prefix().size())) {
        s.errors.push_back(key + ": " + (n ? "name does not match its key" : n.error().message));
        continue;
      }
      n->mod_revision = kv.mod_revision;
      s.nodes[n->name] = *n;
    } else if (key == coordinator_key()) {
      decode_into(s, kv, decode_coordinator, s.coordinator);
    } else if (key == liveness_key()) {
      decode_into(s, kv, decode_liveness, s.liveness);
    } else if (key == resources_key()) {
      decode_into(s, kv, decode_resources, s.resources);
      s.resources_unreadable = !s.resources;
    } else if (key == placement_key()) {
      decode_into(s, kv, decode_placement, s.placement);
    } else if (key == directives_key()) {
      std::optional<DirectivesRecord> d;
      decode_into(s, kv, decode_directives, d);
      if (d) s.directives = *d;
    } else if (key.rfind(statuses_prefix(), 0) == 0) {
      std::optional<NodeStatusRecord> st;
      decode_into(s, kv, decode_status, st);
      if (st) s.statuses[key.substr(statuses_prefix().size())] = *st;
    }
  }
  return s;
}

}  // namespace bulwark
