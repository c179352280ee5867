// The built-in `ocf` agent class: the agent script
// (OCF_ROOT/resource.d/PROVIDER/TYPE) run once per action, its parameters
// as OCF_RESKEY_* environment (never through a shell), Pacemaker's meta
// attributes and notification variables beside them, its exit codes mapped
// (OCF resource agent API 1.1). Agents' state files (HA_RSCTMP) live in the
// node's runtime directory.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <string>

#include "agent/command_class.h"

namespace bulwark {

// The `ocf` class, for ClassDispatcherOptions::classes: agents under
// `ocf_root`.
ClassRunnerFactory ocf_class(std::string ocf_root);

class OcfRunner final : public CommandClass {
 public:
  OcfRunner(const ClassContext& context, std::string ocf_root);

 private:
  void start(Op& op) override;
  void on_result(Op& op, const CheckResult& result) override;

  std::string ocf_root_;
};

}  // namespace bulwark
