#include "agent/operation.h"

namespace bulwark {

const char* op_kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::kProbe:
      return "probe";
    case OpKind::kStart:
      return "start";
    case OpKind::kStop:
      return "stop";
    case OpKind::kMonitor:
      return "monitor";
    case OpKind::kPromote:
      return "promote";
    case OpKind::kDemote:
      return "demote";
    case OpKind::kNotify:
      return "notify";
    case OpKind::kReload:
      return "reload";
  }
  return "probe";
}

std::optional<OpKind> parse_op_kind(const std::string& name) {
  for (OpKind k : {OpKind::kProbe, OpKind::kStart, OpKind::kStop, OpKind::kMonitor,
                   OpKind::kPromote, OpKind::kDemote, OpKind::kNotify, OpKind::kReload}) {
    if (name == op_kind_name(k)) return k;
  }
  return std::nullopt;
}

const char* op_outcome_name(OpOutcome outcome) {
  switch (outcome) {
    case OpOutcome::kOk:
      return "ok";
    case OpOutcome::kNotRunning:
      return "not running";
    case OpOutcome::kRunningPromoted:
      return "running promoted";
    case OpOutcome::kFailed:
      return "failed";
    case OpOutcome::kTimeout:
      return "timed out";
  }
  return "failed";
}

std::vector<std::string> notify_environment(const NotifyEvent& event, const std::string& resource) {
  const std::string prefix = "OCF_RESKEY_CRM_meta_notify_";
  std::vector<std::string> env = {prefix + "type=" + (event.post ? "post" : "pre"),
                                  prefix + "operation=" + op_kind_name(event.operation)};
  const std::pair<const char*, const char*> names[] = {
      {"start", "start"},       {"stop", "stop"},       {"promote", "promote"},
      {"demote", "demote"},     {"active", "active"},   {"inactive", "inactive"},
      {"promoted", "promoted"}, {"promoted", "master"}, {"unpromoted", "unpromoted"},
      {"unpromoted", "slave"},  {"all", "all"},
  };
  for (const auto& [list, name] : names) {
    std::string unames;
    std::string instances;
    if (auto it = event.lists.find(list); it != event.lists.end()) {
      for (const auto& node : it->second) {
        unames += (unames.empty() ? "" : " ") + node;
        instances += (instances.empty() ? "" : " ") + resource + ":" + node;
      }
    }
    // An empty list is one space, as Pacemaker passes it (agents test for
    // " ").
    env.push_back(prefix + name + "_uname=" + (unames.empty() ? " " : unames));
    env.push_back(prefix + name + "_resource=" + (instances.empty() ? " " : instances));
  }
  return env;
}

std::string expand_vars(const std::string& text, const InstanceVars& vars) {
  const std::pair<const char*, const std::string*> table[] = {
      {"${BULWARK_NODE}", &vars.node},
      {"${BULWARK_NODE_ADDRESS}", &vars.node_address},
      {"${BULWARK_RESOURCE}", &vars.resource},
      {"${BULWARK_INSTANCE}", &vars.instance},
  };
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    bool replaced = false;
    for (const auto& [name, value] : table) {
      const std::string_view n(name);
      if (text.compare(pos, n.size(), n) == 0) {
        out += *value;
        pos += n.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += text[pos++];
  }
  return out;
}

std::vector<std::string> vars_environment(const InstanceVars& vars) {
  return {"BULWARK_NODE=" + vars.node, "BULWARK_NODE_ADDRESS=" + vars.node_address,
          "BULWARK_RESOURCE=" + vars.resource, "BULWARK_INSTANCE=" + vars.instance};
}

}  // namespace bulwark
