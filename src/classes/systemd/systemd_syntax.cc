#include "classes/systemd/systemd_syntax.h"

namespace bulwark {

// systemd:UNIT names a unit that systemd runs; Bulwark starts, stops and
// asks it through systemctl.
AgentClassSyntax systemd_syntax() {
  AgentClassSyntax c;
  c.agent_class = AgentClass::kSystemd;
  c.agent = "systemd:";
  c.agent_form = "systemd:UNIT";
  c.parse = [](const YamlSection& s, const std::string& agent, ResourceSpec& r) -> Status {
    r.agent.unit = agent.substr(8);
    if (r.agent.unit.empty() || r.agent.unit.find('/') != std::string::npos)
      return s.error(s["agent"], "agent '" + agent + "' is not systemd:UNIT");
    return Ok{};
  };
  return c;
}

}  // namespace bulwark
