#include "classes/ocf/ocf_runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

namespace bulwark {
namespace {

// OCF exit codes (OCF resource agent API 1.1, section "Return codes").
constexpr int kOcfNotInstalled = 5;
constexpr int kOcfNotRunning = 7;
constexpr int kOcfRunningPromoted = 8;
constexpr int kOcfFailedPromoted = 9;

std::string ocf_action(const OpRequest& r) {
  if (r.kind == OpKind::kProbe) return "monitor";
  if (r.kind == OpKind::kReload) return r.spec.agent.reload.action;
  return op_kind_name(r.kind);
}

}  // namespace

ClassRunnerFactory ocf_class(std::string ocf_root) {
  return [ocf_root =
              std::move(ocf_root)](const ClassContext& context) -> std::unique_ptr<ClassRunner> {
    return std::make_unique<OcfRunner>(context, ocf_root);
  };
}

OcfRunner::OcfRunner(const ClassContext& context, std::string ocf_root)
    : CommandClass(context), ocf_root_(std::move(ocf_root)) {
  std::error_code ec;
  std::filesystem::create_directories(context.runtime_dir + "/ocf", ec);
}

void OcfRunner::start(Op& op) {
  const OpRequest& r = op.request;
  const AgentSpec& a = r.spec.agent;
  const std::string script = ocf_root_ + "/resource.d/" + a.provider + "/" + a.type;
  if (::access(script.c_str(), X_OK) != 0) {
    // Not installed here: certainly not running here either.
    const std::string why = "no OCF agent at " + script;
    if (r.kind == OpKind::kProbe || r.kind == OpKind::kStop)
      return complete(r.id, r.kind == OpKind::kStop ? OpOutcome::kOk : OpOutcome::kNotRunning, why);
    return complete(r.id, OpOutcome::kFailed, why);
  }
  std::vector<std::string> env = base_environment(r);
  env.push_back("OCF_ROOT=" + ocf_root_);
  env.push_back("OCF_FUNCTIONS_DIR=" + ocf_root_ + "/lib/heartbeat");
  env.push_back("OCF_RA_VERSION_MAJOR=1");
  env.push_back("OCF_RA_VERSION_MINOR=1");
  env.push_back("OCF_RESOURCE_INSTANCE=" + r.vars.resource);
  env.push_back("OCF_RESOURCE_PROVIDER=" + a.provider);
  env.push_back("OCF_RESOURCE_TYPE=" + a.type);
  // State files of agents (ocf-directories' HA_RSCTMP) live in this node's
  // runtime directory: nodes sharing a host never see each other's.
  env.push_back("HA_RSCTMP=" + context().runtime_dir + "/ocf");
  // HA_VARRUN stays the agents' default (/var/run/): ocf_mkstatedir refuses
  // a pid directory outside it, and apache, named and others keep theirs
  // under /var/run.
  env.push_back("OCF_RESKEY_CRM_meta_timeout=" + std::to_string(r.timeout_ms));
  env.push_back("OCF_RESKEY_CRM_meta_interval=" +
                std::to_string(r.kind == OpKind::kMonitor ? r.spec.monitor.interval_ms : 0));
  env.push_back("OCF_RESKEY_CRM_meta_on_node=" + r.vars.node);
  if (r.spec.kind != ResourceKind::kSingleton) {
    // Pacemaker's clone meta attributes, promoted ones under their old
    // names too (agents such as mariadb read master_max).
    const std::string meta = "OCF_RESKEY_CRM_meta_";
    const bool promotable = r.spec.kind == ResourceKind::kPromotable;
    env.push_back(meta + "clone_max=" + std::to_string(r.clone_max));
    env.push_back(meta + "clone_node_max=1");
    env.push_back(meta + "notify=" + (r.spec.notify ? "true" : "false"));
    env.push_back(meta + "promotable=" + (promotable ? "true" : "false"));
    if (promotable) {
      for (const char* name : {"promoted_max=", "master_max="})
        env.push_back(meta + name + std::to_string(r.spec.promoted_max));
      for (const char* name : {"promoted_node_max=", "master_node_max="})
        env.push_back(meta + name + "1");
    }
  }
  if (r.kind == OpKind::kNotify) {
    for (auto& e : notify_environment(r.notify, r.vars.resource)) env.push_back(std::move(e));
  }
  for (const auto& [k, v] : a.params)
    env.push_back("OCF_RESKEY_" + k + "=" + expand_vars(v, r.vars));
  if (r.kind == OpKind::kReload && r.spec.agent.reload.action.empty())
    return complete(r.id, OpOutcome::kFailed, "the agent has no reload action");
  // As under Pacemaker, what an action leaves running is the agent's: a
  // start may launch its daemon in the background (ocf:heartbeat:anything,
  // IPaddr2's ARP sender). Only a stop's leftovers end with it, and any
  // action's at its timeout.
  begin_command(op, {script, ocf_action(r)}, std::move(env),
                /*keep_leftovers=*/r.kind != OpKind::kStop);
}

void OcfRunner::on_result(Op& op, const CheckResult& res) {
  const OpRequest& r = op.request;
  if (!WIFEXITED(res.wait_status)) return complete(r.id, OpOutcome::kFailed, res.detail);
  const int code = WEXITSTATUS(res.wait_status);
  const std::string detail = "OCF exit " + std::to_string(code);
  if (code == 0) return complete(r.id, OpOutcome::kOk, detail);
  if (code == kOcfNotRunning)
    return complete(r.id, r.kind == OpKind::kStop ? OpOutcome::kOk : OpOutcome::kNotRunning,
                    detail);
  if (code == kOcfRunningPromoted) return complete(r.id, OpOutcome::kRunningPromoted, detail);
  if (code == kOcfNotInstalled && r.kind == OpKind::kProbe)
    return complete(r.id, OpOutcome::kNotRunning, detail + " (not installed)");
  complete(r.id, OpOutcome::kFailed,
           detail + (code == kOcfFailedPromoted ? " (failed while promoted)" : ""));
}

}  // namespace bulwark
