#include "classes/exec/exec_syntax.h"

namespace bulwark {

// An exec resource is its command: argv, the first element an absolute
// path, ${BULWARK_...} expanded per node. It alone may be watched by a TCP
// or HTTP check, having no monitor action of its own.
AgentClassSyntax exec_syntax() {
  AgentClassSyntax c;
  c.agent_class = AgentClass::kExec;
  c.name = "exec";
  c.agent = "exec";
  c.agent_form = "exec";
  c.command_monitors = true;
  c.keywords = {{"resources[]", "command", "list of strings", "(required for exec)",
                 "argv; the first element an absolute path; ${BULWARK_...} expanded per node"}};
  c.parse = [](const YamlSection& s, const std::string&, ResourceSpec& r) -> Status {
    std::vector<std::string>& command = r.agent.command;
    if (auto st = s.get_string_list("command", command); !st) return st;
    if (command.empty() || command[0].empty() || command[0][0] != '/')
      return s.error(s.at_or_self("command"),
                     "agent exec needs command: a list starting with an absolute path");
    for (std::size_t i = 0; i < command.size(); ++i) {
      if (auto st = check_resource_variables(s, s["command"][i], command[i]); !st) return st;
    }
    return Ok{};
  };
  return c;
}

}  // namespace bulwark
