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
  }
  return "probe";
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
