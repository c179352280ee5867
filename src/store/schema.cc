#include "store/schema.h"

#include <nlohmann/json.hpp>

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
  const json j = json::parse(value, nullptr, false);
  if (!j.is_object()) return make_error(Errc::kInvalid, std::string(what) + ": not a JSON object");
  try {
    return fn(j);
  } catch (const json::exception& e) {
    return make_error(Errc::kInvalid, std::string(what) + ": " + e.what());
  }
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

std::string Schema::encode_schema(const std::string& cluster) const {
  return json{{"version", kSchemaVersion}, {"cluster", cluster}}.dump();
}

std::string Schema::encode_node(const NodeRecord& n) {
  return json{{"name", n.name},
              {"address", n.address},
              {"attributes", n.attributes},
              {"mode", node_mode_name(n.mode)},
              {"ports", ports_json(n.ports)}}
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

ClusterState Schema::build_state(const std::map<std::string, KeyValue>& kvs,
                                 int64_t revision) const {
  ClusterState s;
  s.loaded = true;
  s.revision = revision;
  for (const auto& [key, kv] : kvs) {
    if (key == schema_key()) {
      const json j = json::parse(kv.value, nullptr, false);
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
      auto c = decode_coordinator(kv.value);
      if (!c) {
        s.errors.push_back(key + ": " + c.error().message);
        continue;
      }
      c->mod_revision = kv.mod_revision;
      s.coordinator = *c;
    } else if (key == liveness_key()) {
      auto l = decode_liveness(kv.value);
      if (!l) {
        s.errors.push_back(key + ": " + l.error().message);
        continue;
      }
      l->mod_revision = kv.mod_revision;
      s.liveness = *l;
    }
  }
  return s;
}

}  // namespace bulwark
