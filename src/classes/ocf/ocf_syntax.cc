#include "classes/ocf/ocf_syntax.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "core/config.h"

namespace bulwark {
namespace {

constexpr std::string_view kPrefix = "ocf:";

}  // namespace

// ocf:PROVIDER:TYPE names /usr/lib/ocf/resource.d/PROVIDER/TYPE; params
// become OCF_RESKEY_*. Its meta-data and validate-all are checked at apply
// (ocf_checks.h), where the agent is installed, not here.
AgentClassSyntax ocf_syntax() {
  AgentClassSyntax c;
  c.agent_class = AgentClass::kOcf;
  c.name = "ocf";
  c.agent = kPrefix;
  c.agent_form = "ocf:PROVIDER:TYPE";
  c.promoted_role = true;
  c.notify_action = true;
  c.parse = [](const YamlSection& s, const std::string& agent, ResourceSpec& r) -> Status {
    const std::string rest = agent.substr(kPrefix.size());
    const auto colon = rest.find(':');
    AgentSpec& a = r.agent;
    a.provider = rest.substr(0, colon);
    a.type = colon == std::string::npos ? "" : rest.substr(colon + 1);
    const bool type_ok = !a.type.empty() && std::all_of(a.type.begin(), a.type.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
    });
    if (!valid_node_name(a.provider) || !type_ok)
      return s.error(s["agent"], "agent '" + agent + "' is not ocf:PROVIDER:TYPE");
    return Ok{};
  };
  return c;
}

}  // namespace bulwark
