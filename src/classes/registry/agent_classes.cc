#include "classes/registry/agent_classes.h"

#include "classes/exec/exec_syntax.h"
#include "classes/ocf/ocf_syntax.h"
#include "classes/proxy/proxy_syntax.h"
#include "classes/systemd/systemd_syntax.h"
#include "classes/vip/vip_syntax.h"

namespace bulwark {

const AgentClassSyntaxes& agent_class_syntaxes() {
  static const AgentClassSyntaxes kClasses = {exec_syntax(), ocf_syntax(), systemd_syntax(),
                                              vip_syntax(), proxy_syntax()};
  return kClasses;
}

}  // namespace bulwark
