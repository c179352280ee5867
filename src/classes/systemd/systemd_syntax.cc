#include "classes/systemd/systemd_syntax.h"

#include <string_view>

namespace bulwark {
namespace {

constexpr std::string_view kPrefix = "systemd:";

}  // namespace

// systemd:UNIT names a unit that systemd runs; Bulwark starts, stops and
// asks it through systemctl.
AgentClassSyntax systemd_syntax() {
  AgentClassSyntax c;
  c.agent_class = AgentClass::kSystemd;
  c.name = "systemd";
  c.agent = kPrefix;
  c.agent_form = "systemd:UNIT";
  c.parse = [](const YamlSection& s, const std::string& agent, ResourceSpec& r) -> Status {
    r.agent.unit = agent.substr(kPrefix.size());
    if (r.agent.unit.empty() || r.agent.unit.find('/') != std::string::npos)
      return s.error(s["agent"], "agent '" + agent + "' is not systemd:UNIT");
    return Ok{};
  };
  return c;
}

}  // namespace bulwark
