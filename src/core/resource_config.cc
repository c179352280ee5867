#include "core/resource_config.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

#include "core/config.h"

namespace bulwark {
namespace {

// The keys every agent class shares; each class adds its own
// (AgentClassSyntax::keywords).
const std::vector<ConfigKeyword> kKeywords = {
    {"resources[]", "name", "string", "(required)", "resource name: 1-63 of a-z 0-9 - _ ."},
    {"resources[]", "agent", "exec|ocf:PROVIDER:TYPE|systemd:UNIT|vip|proxy", "(required)",
     "how the resource is run"},
    {"resources[]", "params", "map", "{}",
     "ocf: OCF_RESKEY_* parameters; exec: environment; vip: address, prefix, interface, label, "
     "conflict_probe_ms"},
    {"resources[]", "user", "string", "(the daemon's)", "exec: run as this user"},
    {"resources[]", "working_dir", "path", "/", "exec: working directory"},
    {"resources[]", "singleton", "bool", "true unless clone or promotable",
     "exactly one instance cluster-wide (active/passive)"},
    {"resources[]", "clone", "mapping", "(none)", "active/active: one instance per eligible node"},
    {"resources[]", "promotable", "mapping", "(none)", "a clone with promoted instances"},
    {"resources[]", "monitor", "mapping", "interval 10 s, timeout 20 s", "health monitoring"},
    {"resources[]", "start_timeout_ms", "integer, ms", "20000", "a start slower than this fails"},
    {"resources[]", "stop_timeout_ms", "integer, ms", "20000",
     "then SIGKILL (exec) or a failed stop"},
    {"resources[]", "migration_threshold", "integer", "3",
     "failures on a node before the resource moves away from it"},
    {"resources[]", "failure_timeout_ms", "integer, ms", "0",
     "failures older than this are forgotten; 0: kept until cleanup"},
    {"resources[]", "stickiness", "integer", "100",
     "preference for staying where it runs (a node's return does not pull it back)"},
    {"resources[]", "notify_timeout_ms", "integer, ms", "20000",
     "a slower notify action fails (it is then logged, and the operation goes on)"},
    {"resources[]", "enabled", "bool", "true", "false: stopped everywhere"},
    {"resources[].clone", "max", "integer", "0", "instances; 0: one per eligible node"},
    {"resources[].clone", "notify", "bool", "false",
     "ocf: run the agent's notify action on every active instance before and after each "
     "start and stop"},
    {"resources[].promotable", "max", "integer", "0", "instances; 0: one per eligible node"},
    {"resources[].promotable", "promoted", "integer", "1", "instances promoted at once"},
    {"resources[].promotable", "notify", "bool", "false",
     "ocf: run the agent's notify action on every active instance before and after each "
     "start, stop, promotion and demotion"},
    {"resources[].monitor", "interval_ms", "integer, ms", "10000", "time between monitors"},
    {"resources[].monitor", "timeout_ms", "integer, ms", "20000", "a slower monitor fails"},
    {"resources[].monitor", "tcp", "ADDRESS:PORT", "(none)",
     "exec: must accept a connection; ${BULWARK_...} allowed"},
    {"resources[].monitor", "http", "URL", "(none)", "exec: must answer 2xx or 3xx"},
    {"groups[]", "name", "string", "(required)", "group name, unique among resources and groups"},
    {"groups[]", "resources", "list", "(required)",
     "singletons started in order, stopped in reverse, on one node"},
    {"constraints[]", "colocate", "resource", "", "colocation: this resource ..."},
    {"constraints[]", "with", "resource", "", "... runs on the node of this one"},
    {"constraints[]", "apart", "resource", "", "... never on the node of this one"},
    {"constraints[]", "order", "list of resources", "", "each starts after the one before"},
    {"constraints[]", "location", "resource", "", "location: this resource ..."},
    {"constraints[]", "prefer", "mapping", "",
     "... prefers nodes with this node name or attributes"},
    {"constraints[]", "avoid", "mapping", "", "... avoids them"},
    {"constraints[]", "score", "integer", "100", "location: strength (1-1000000)"},
};

bool valid_resource_name(const std::string& name) { return valid_node_name(name); }

}  // namespace

const char* agent_class_name(AgentClass k) {
  switch (k) {
    case AgentClass::kExec:
      return "exec";
    case AgentClass::kOcf:
      return "ocf";
    case AgentClass::kSystemd:
      return "systemd";
    case AgentClass::kVip:
      return "vip";
    case AgentClass::kProxy:
      return "proxy";
  }
  return "exec";
}

std::string agent_name(const AgentSpec& a) {
  switch (a.agent_class) {
    case AgentClass::kOcf:
      return "ocf:" + a.provider + ":" + a.type;
    case AgentClass::kSystemd:
      return "systemd:" + a.unit;
    default:
      return agent_class_name(a.agent_class);
  }
}

namespace {

// "a, b or c"
std::string or_list(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return out;
}

const AgentClassSyntax* find_class(const AgentClassSyntaxes& classes, const std::string& agent) {
  for (const auto& c : classes) {
    const bool prefix = !c.agent.empty() && c.agent.back() == ':';
    if (prefix ? agent.rfind(c.agent, 0) == 0 : agent == c.agent) return &c;
  }
  return nullptr;
}

// A key of the resource that the class brings (an exec's command).
bool owns_key(const AgentClassSyntax& c, const char* key) {
  return std::any_of(c.keywords.begin(), c.keywords.end(), [&](const ConfigKeyword& k) {
    return std::string(k.section) == "resources[]" && std::string(k.key) == key;
  });
}

// The `agent:` value names a class of `classes`; a key another class owns
// (an exec's command, a proxy's section) is refused here.
Result<const AgentClassSyntax*> parse_agent_class(const YamlSection& s,
                                                  const AgentClassSyntaxes& classes,
                                                  std::string& agent) {
  if (auto st = s.require("agent"); !st) return st.error();
  if (auto st = s.get_string("agent", agent); !st) return st.error();
  const AgentClassSyntax* cls = find_class(classes, agent);
  if (!cls) {
    std::vector<std::string> forms;
    for (const auto& c : classes) forms.push_back(c.agent_form);
    return s.error(s["agent"],
                   "unknown agent class '" + agent + "' (expected " + or_list(forms) + ")");
  }
  for (const auto& other : classes) {
    for (const auto& k : other.keywords) {
      if (std::string(k.section) != "resources[]" || !s[k.key] || owns_key(*cls, k.key)) continue;
      std::vector<std::string> owners;
      for (const auto& c : classes) {
        if (owns_key(c, k.key)) owners.push_back(c.agent_form);
      }
      return s.error(s[k.key], std::string(k.key) + " is only for agent " + or_list(owners));
    }
  }
  return cls;
}

// The keys every class shares: params (whose meaning is the class's), user
// and working_dir.
Status parse_shared_agent_keys(const YamlSection& s, AgentSpec& a) {
  if (const YAML::Node params = s["params"]) {
    if (!params.IsMap()) return s.error(params, "params must be a mapping of strings");
    for (const auto& kv : params) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar())
        return s.error(kv.first, "params must be a mapping of strings");
      const std::string key = kv.first.Scalar();
      const bool key_ok = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
      });
      if (!key_ok) return s.error(kv.first, "param name '" + key + "' must be of A-Z a-z 0-9 _");
      if (auto st = check_resource_variables(s, kv.second, kv.second.Scalar()); !st) return st;
      a.params[key] = kv.second.Scalar();
    }
  }
  if (auto st = s.get_string("user", a.user); !st) return st;
  if (auto st = s.get_string("working_dir", a.working_dir); !st) return st;
  if (!a.working_dir.empty() && a.working_dir[0] != '/')
    return s.error(s["working_dir"], "working_dir must be an absolute path");
  return Ok{};
}

// The names of the classes that have `has`, as "exec" or "exec or ocf".
std::string class_names(const AgentClassSyntaxes& classes, bool AgentClassSyntax::*has) {
  std::vector<std::string> names;
  for (const auto& c : classes) {
    if (c.*has) names.push_back(c.name);
  }
  return or_list(names);
}

// "needs an ocf agent (exec has no promoted role)": which classes have
// what a key asks for (`has`), for a refusal.
std::string needs(const AgentClassSyntaxes& classes, bool AgentClassSyntax::*has,
                  const std::string& name, const std::string& what) {
  const std::string list = class_names(classes, has);
  if (list.empty()) return "needs an agent with a " + what + ", and no agent class has one";
  const bool vowel = std::string("aeiou").find(list[0]) != std::string::npos;
  return std::string("needs ") + (vowel ? "an " : "a ") + list + " agent (" + name + " has no " +
         what + ")";
}

Status parse_kind(const std::string& path, const YamlSection& s, const AgentClassSyntaxes& classes,
                  const std::vector<ConfigKeyword>& table, const AgentClassSyntax& cls,
                  ResourceSpec& r) {
  const std::string& name = cls.name;
  int kinds = 0;
  bool singleton = false;
  if (auto st = s.get_bool("singleton", singleton); !st) return st;
  if (s["singleton"] && !singleton)
    return s.error(s["singleton"],
                   "singleton: false means nothing; use clone: {} for active/active");
  kinds += singleton ? 1 : 0;
  if (const YAML::Node clone = s["clone"]) {
    ++kinds;
    r.kind = ResourceKind::kClone;
    const YamlSection c(path, clone.IsNull() ? YAML::Node(YAML::NodeType::Map) : clone,
                        s.label() + ".clone", table, "resources[].clone");
    if (auto st = c.check_keys(); !st) return st;
    if (auto st = c.get_int("max", r.clone_max, 0, 10000); !st) return st;
    if (auto st = c.get_bool("notify", r.notify); !st) return st;
    if (r.notify && !cls.notify_action)
      return c.error(c["notify"], "notify " + needs(classes, &AgentClassSyntax::notify_action, name,
                                                    "notify action"));
  }
  if (const YAML::Node prom = s["promotable"]) {
    ++kinds;
    r.kind = ResourceKind::kPromotable;
    const YamlSection p(path, prom.IsNull() ? YAML::Node(YAML::NodeType::Map) : prom,
                        s.label() + ".promotable", table, "resources[].promotable");
    if (auto st = p.check_keys(); !st) return st;
    if (auto st = p.get_int("max", r.clone_max, 0, 10000); !st) return st;
    if (auto st = p.get_int("promoted", r.promoted_max, 1, 10000); !st) return st;
    if (r.clone_max != 0 && r.promoted_max > r.clone_max)
      return p.error(p["promoted"], "promoted must not exceed max");
    if (auto st = p.get_bool("notify", r.notify); !st) return st;
    if (!cls.promoted_role)
      return s.error(prom, "promotable " + needs(classes, &AgentClassSyntax::promoted_role, name,
                                                 "promoted role"));
    // Every class with a promoted role has a notify action: no check here.
  }
  if (kinds > 1)
    return s.error(s.node(), "a resource is one of singleton, clone or promotable, not several");
  return Ok{};
}

Status parse_monitor(const std::string& path, const YamlSection& s,
                     const AgentClassSyntaxes& classes, const std::vector<ConfigKeyword>& table,
                     const AgentClassSyntax& cls, ResourceSpec& r) {
  r.monitor = cls.monitor;
  const YAML::Node node = s["monitor"];
  if (!node) return Ok{};
  const YamlSection m(path, node, s.label() + ".monitor", table, "resources[].monitor");
  if (auto st = m.check_keys(); !st) return st;
  if (auto st = m.get_int("interval_ms", r.monitor.interval_ms, 100, 86400000); !st) return st;
  r.monitor.timeout_ms = std::max(r.monitor.interval_ms, r.monitor.timeout_ms);
  if (auto st = m.get_int("timeout_ms", r.monitor.timeout_ms, 10, 86400000); !st) return st;
  if (auto st = m.get_string("tcp", r.monitor.tcp); !st) return st;
  if (auto st = m.get_string("http", r.monitor.http); !st) return st;
  if (auto st = check_resource_variables(m, m.at_or_self("tcp"), r.monitor.tcp); !st) return st;
  if (auto st = check_resource_variables(m, m.at_or_self("http"), r.monitor.http); !st) return st;
  if (!r.monitor.http.empty() && r.monitor.http.rfind("http://", 0) != 0)
    return m.error(m["http"], "http must be an http:// URL");
  if ((!r.monitor.tcp.empty() || !r.monitor.http.empty()) && !cls.command_monitors)
    return m.error(node, "tcp and http monitors are for agent " +
                             class_names(classes, &AgentClassSyntax::command_monitors) + " (" +
                             cls.name + " agents monitor themselves)");
  return Ok{};
}

// Reads one resource into `r`, and the class it names into `cls`.
Status parse_resource(const std::string& path, const YAML::Node& node, const std::string& label,
                      const AgentClassSyntaxes& classes, const std::vector<ConfigKeyword>& table,
                      ResourceFileUse use, ResourceSpec& r, const AgentClassSyntax*& cls) {
  const YamlSection s(path, node, label, table, "resources[]");
  if (auto st = s.check_keys(); !st) return st;
  if (auto st = s.require("name"); !st) return st;
  if (auto st = s.get_string("name", r.name); !st) return st;
  if (!valid_resource_name(r.name))
    return s.error(s["name"],
                   "resource name '" + r.name + "' must be 1-63 characters of a-z 0-9 - _ .");
  std::string agent;
  auto found = parse_agent_class(s, classes, agent);
  if (!found) return found.error();
  cls = *found;
  r.agent.agent_class = cls->agent_class;
  if (auto st = parse_shared_agent_keys(s, r.agent); !st) return st;
  if (auto st = parse_kind(path, s, classes, table, *cls, r); !st) return st;
  // The class's own part, once its kind is known (a vip is a singleton).
  if (cls->parse) {
    if (auto st = cls->parse(s, agent, r); !st) return st;
  }
  if (use == ResourceFileUse::kApply && cls->check_at_apply) {
    if (auto st = cls->check_at_apply(s, r); !st) return st;
  }
  if (auto st = parse_monitor(path, s, classes, table, *cls, r); !st) return st;
  for (auto [key, field, min, max] :
       {std::tuple{"start_timeout_ms", &r.start_timeout_ms, 10, 86400000},
        std::tuple{"stop_timeout_ms", &r.stop_timeout_ms, 10, 86400000},
        std::tuple{"notify_timeout_ms", &r.notify_timeout_ms, 10, 86400000},
        std::tuple{"migration_threshold", &r.migration_threshold, 1, 1000000},
        std::tuple{"failure_timeout_ms", &r.failure_timeout_ms, 0, 86400000},
        std::tuple{"stickiness", &r.stickiness, 0, 1000000}}) {
    if (auto st = s.get_int(key, *field, min, max); !st) return st;
  }
  if (auto st = s.get_bool("enabled", r.enabled); !st) return st;
  return Ok{};
}

Status parse_groups(const std::string& path, const YAML::Node& node, ResourceConfig& c) {
  if (!node.IsSequence()) return yaml_error(path, node, "groups must be a list");
  std::set<std::string> grouped;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string label = "groups[" + std::to_string(i) + "]";
    const YamlSection s(path, node[i], label, kKeywords, "groups[]");
    if (auto st = s.check_keys(); !st) return st;
    GroupSpec g;
    if (auto st = s.require("name"); !st) return st;
    if (auto st = s.get_string("name", g.name); !st) return st;
    if (!valid_resource_name(g.name))
      return s.error(s["name"],
                     "group name '" + g.name + "' must be 1-63 characters of a-z 0-9 - _ .");
    if (c.find(g.name) || c.find_group(g.name))
      return s.error(s["name"], "the name '" + g.name + "' is already taken");
    if (auto st = s.require("resources"); !st) return st;
    if (auto st = s.get_string_list("resources", g.resources); !st) return st;
    if (g.resources.empty()) return s.error(s["resources"], "a group needs at least one resource");
    for (std::size_t k = 0; k < g.resources.size(); ++k) {
      const std::string& m = g.resources[k];
      const YAML::Node at = s["resources"][k];
      const ResourceSpec* r = c.find(m);
      if (!r) return s.error(at, "no resource named '" + m + "'");
      if (r->kind != ResourceKind::kSingleton)
        return s.error(at, "group members must be singletons; '" + m + "' is not");
      if (!grouped.insert(m).second) return s.error(at, "'" + m + "' is already in a group");
    }
    c.groups.push_back(std::move(g));
  }
  return Ok{};
}

// A name a constraint may refer to: a resource or a group.
Status check_reference(const YamlSection& s, const ResourceConfig& c, const char* key,
                       std::string& out) {
  if (auto st = s.get_string(key, out); !st) return st;
  if (!c.find(out) && !c.find_group(out))
    return s.error(s[key], "no resource or group named '" + out + "'");
  return Ok{};
}

Status parse_location_target(const YamlSection& s, const char* key, LocationSpec& l) {
  const YAML::Node m = s[key];
  if (!m.IsMap() || m.size() == 0)
    return s.error(m, std::string(key) + " must map node: NAME or attribute: VALUE");
  for (const auto& kv : m) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar())
      return s.error(kv.first, std::string(key) + " must map strings to strings");
    const std::string k = kv.first.Scalar();
    if (k == "node") {
      l.node = kv.second.Scalar();
    } else if (valid_attribute_key(k)) {
      l.attributes[k] = kv.second.Scalar();
    } else {
      return s.error(kv.first, "'" + k + "' is not a valid attribute name");
    }
  }
  return Ok{};
}

Status parse_constraint(const YamlSection& s, ResourceConfig& c) {
  if (auto st = s.check_keys(); !st) return st;
  const int kinds = (s["colocate"] ? 1 : 0) + (s["order"] ? 1 : 0) + (s["location"] ? 1 : 0);
  if (kinds != 1)
    return s.error(s.node(), "a constraint is exactly one of colocate, order or location");
  if (s["colocate"]) {
    ColocationSpec col;
    if (auto st = check_reference(s, c, "colocate", col.resource); !st) return st;
    if ((s["with"] ? 1 : 0) + (s["apart"] ? 1 : 0) != 1)
      return s.error(s.node(), "colocate needs exactly one of with or apart");
    col.apart = static_cast<bool>(s["apart"]);
    if (auto st = check_reference(s, c, col.apart ? "apart" : "with", col.other); !st) return st;
    if (col.other == col.resource)
      return s.error(s.node(), "'" + col.resource + "' cannot be colocated with itself");
    c.colocations.push_back(col);
    return Ok{};
  }
  if (s["with"] || s["apart"]) return s.error(s.node(), "with and apart belong to colocate");
  if (s["order"]) {
    OrderSpec o;
    if (auto st = s.get_string_list("order", o.sequence); !st) return st;
    if (o.sequence.size() < 2) return s.error(s["order"], "order needs at least two resources");
    for (std::size_t k = 0; k < o.sequence.size(); ++k) {
      if (!c.find(o.sequence[k]) && !c.find_group(o.sequence[k]))
        return s.error(s["order"][k], "no resource or group named '" + o.sequence[k] + "'");
    }
    c.orders.push_back(std::move(o));
    return Ok{};
  }
  LocationSpec l;
  if (auto st = check_reference(s, c, "location", l.resource); !st) return st;
  if ((s["prefer"] ? 1 : 0) + (s["avoid"] ? 1 : 0) != 1)
    return s.error(s.node(), "location needs exactly one of prefer or avoid");
  l.avoid = static_cast<bool>(s["avoid"]);
  if (auto st = parse_location_target(s, l.avoid ? "avoid" : "prefer", l); !st) return st;
  if (auto st = s.get_int("score", l.score, 1, 1000000); !st) return st;
  c.locations.push_back(std::move(l));
  return Ok{};
}

// Finds a cycle in "before" edges (order) or "with" edges (colocation) and
// returns it as "a -> b -> a", or "" when there is none.
std::string find_cycle(const std::map<std::string, std::set<std::string>>& edges) {
  std::map<std::string, int> state;  // 0 new, 1 on the path, 2 done
  std::vector<std::string> path;
  std::string cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& n) {
    state[n] = 1;
    path.push_back(n);
    auto it = edges.find(n);
    if (it != edges.end()) {
      for (const auto& next : it->second) {
        if (state[next] == 1) {
          auto from = std::find(path.begin(), path.end(), next);
          for (auto p = from; p != path.end(); ++p) cycle += *p + " -> ";
          cycle += next;
          return true;
        }
        if (state[next] == 0 && visit(next)) return true;
      }
    }
    path.pop_back();
    state[n] = 2;
    return false;
  };
  for (const auto& [n, unused] : edges) {
    if (state[n] == 0 && visit(n)) return cycle;
  }
  return "";
}

Status check_constraints(const std::string& path, const YAML::Node& node, const ResourceConfig& c) {
  std::map<std::string, std::set<std::string>> before;
  for (const auto& o : c.orders) {
    for (std::size_t k = 0; k + 1 < o.sequence.size(); ++k)
      before[o.sequence[k]].insert(o.sequence[k + 1]);
  }
  if (const std::string cycle = find_cycle(before); !cycle.empty())
    return yaml_error(path, node, "order loop: " + cycle + " (nothing could ever start)");
  std::map<std::string, std::set<std::string>> with;
  std::set<std::pair<std::string, std::string>> together;
  for (const auto& col : c.colocations) {
    if (!col.apart) {
      with[col.resource].insert(col.other);
      together.insert(std::minmax(col.resource, col.other));
    }
  }
  if (const std::string cycle = find_cycle(with); !cycle.empty())
    return yaml_error(path, node, "colocation loop: " + cycle + " (use a group instead)");
  for (const auto& col : c.colocations) {
    if (col.apart && together.count(std::minmax(col.resource, col.other)))
      return yaml_error(
          path, node,
          "'" + col.resource + "' and '" + col.other + "' are colocated both together and apart");
  }
  return Ok{};
}

// Each class's checks against the whole file, at the resource they concern
// (`classes[i]`: the class of resource i).
Status check_in_file(const std::string& path, const YAML::Node& resources,
                     const std::vector<const AgentClassSyntax*>& classes,
                     const std::vector<ConfigKeyword>& table, const ResourceConfig& c) {
  for (std::size_t i = 0; i < c.resources.size(); ++i) {
    const ResourceSpec& r = c.resources[i];
    const AgentClassSyntax* cls = classes[i];
    if (!cls->check_in_file) continue;
    const YamlSection s(path, resources[i], "resources[" + std::to_string(i) + "]", table,
                        "resources[]");
    if (auto st = cls->check_in_file(s, r, c); !st) return st;
  }
  return Ok{};
}

Result<ResourceConfig> parse_root(const YAML::Node& root, const std::string& path,
                                  const AgentClassSyntaxes& classes, ResourceFileUse use) {
  if (!root.IsMap()) return yaml_error(path, root, "the resources file must be a mapping");
  for (const auto& item : root) {
    auto key = yaml_key(path, item.first);
    if (!key) return key.error();
    if (*key != "resources" && *key != "groups" && *key != "constraints")
      return yaml_error(
          path, item.first,
          "unknown key '" + *key + "' (expected one of: constraints, groups, resources)");
  }
  ResourceConfig c;
  const std::vector<ConfigKeyword> table = resource_config_keywords(classes);
  if (const YAML::Node resources = root["resources"]) {
    if (!resources.IsSequence()) return yaml_error(path, resources, "resources must be a list");
    std::vector<const AgentClassSyntax*> class_of;
    for (std::size_t i = 0; i < resources.size(); ++i) {
      ResourceSpec r;
      const AgentClassSyntax* cls = nullptr;
      if (auto st = parse_resource(path, resources[i], "resources[" + std::to_string(i) + "]",
                                   classes, table, use, r, cls);
          !st)
        return st.error();
      if (c.find(r.name))
        return yaml_error(path, resources[i]["name"], "duplicate resource name '" + r.name + "'");
      c.resources.push_back(std::move(r));
      class_of.push_back(cls);
    }
    if (auto st = check_in_file(path, resources, class_of, table, c); !st) return st.error();
  }
  if (const YAML::Node groups = root["groups"]) {
    if (auto st = parse_groups(path, groups, c); !st) return st.error();
  }
  if (const YAML::Node constraints = root["constraints"]) {
    if (!constraints.IsSequence())
      return yaml_error(path, constraints, "constraints must be a list");
    for (std::size_t i = 0; i < constraints.size(); ++i) {
      const YamlSection s(path, constraints[i], "constraints[" + std::to_string(i) + "]", kKeywords,
                          "constraints[]");
      if (auto st = parse_constraint(s, c); !st) return st.error();
    }
    if (auto st = check_constraints(path, constraints, c); !st) return st.error();
  }
  return c;
}

}  // namespace

Result<ResourceConfig> parse_resource_config(const std::string& text, const std::string& path,
                                             const AgentClassSyntaxes& classes,
                                             ResourceFileUse use) {
  return parse_yaml<ResourceConfig>(text, path, [&](const YAML::Node& root) {
    return root.IsNull() ? Result<ResourceConfig>(ResourceConfig{})
                         : parse_root(root, path, classes, use);
  });
}

Status check_resource_variables(const YamlSection& s, const YAML::Node& at,
                                const std::string& text) {
  std::size_t pos = 0;
  while ((pos = text.find("${", pos)) != std::string::npos) {
    const std::size_t end = text.find('}', pos);
    if (end == std::string::npos) return s.error(at, "unterminated ${ in '" + text + "'");
    const std::string name = text.substr(pos + 2, end - pos - 2);
    const auto& known = resource_variables();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return s.error(at, "unknown variable ${" + name + "} (known: " + list + ")");
    }
    pos = end + 1;
  }
  return Ok{};
}

const std::vector<std::string>& resource_variables() {
  static const std::vector<std::string> kVariables = {"BULWARK_NODE", "BULWARK_NODE_ADDRESS",
                                                      "BULWARK_RESOURCE", "BULWARK_INSTANCE"};
  return kVariables;
}

std::vector<ConfigKeyword> resource_config_keywords(const AgentClassSyntaxes& classes) {
  std::vector<ConfigKeyword> table = kKeywords;
  for (const auto& c : classes) table.insert(table.end(), c.keywords.begin(), c.keywords.end());
  return table;
}

const ResourceSpec* ResourceConfig::find(const std::string& name) const {
  for (const auto& r : resources) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

const GroupSpec* ResourceConfig::find_group(const std::string& name) const {
  for (const auto& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

}  // namespace bulwark
