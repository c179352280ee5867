#include "classes/systemd/systemd_runner.h"

#include <filesystem>

namespace bulwark {

ClassRunnerFactory systemd_class(SystemdClassOptions options) {
  return
      [options = std::move(options)](const ClassContext& context) -> std::unique_ptr<ClassRunner> {
        return std::make_unique<SystemdRunner>(context, options);
      };
}

SystemdRunner::SystemdRunner(const ClassContext& context, SystemdClassOptions options)
    : CommandClass(context), options_(std::move(options)) {}

void SystemdRunner::start(Op& op) {
  const OpRequest& r = op.request;
  const std::string& unit = r.spec.agent.unit;
  if (!std::filesystem::exists(options_.marker)) {
    const std::string why = "systemd:" + unit +
                            " needs systemd as PID 1, and this machine runs without it (no " +
                            options_.marker + ")";
    if (r.kind == OpKind::kProbe) return complete(r.id, OpOutcome::kNotRunning, why);
    if (r.kind == OpKind::kStop) return complete(r.id, OpOutcome::kOk, why);
    return complete(r.id, OpOutcome::kFailed, why);
  }
  std::vector<std::string> argv = {options_.systemctl};
  switch (r.kind) {
    case OpKind::kStart:
      argv.insert(argv.end(), {"start", unit});
      break;
    case OpKind::kStop:
      argv.insert(argv.end(), {"stop", unit});
      break;
    case OpKind::kProbe:
    case OpKind::kMonitor:
      argv.insert(argv.end(), {"is-active", "--quiet", unit});
      break;
    case OpKind::kPromote:
    case OpKind::kDemote:
      return complete(r.id, OpOutcome::kFailed, "systemd units have no promoted role");
    case OpKind::kNotify:
      return complete(r.id, OpOutcome::kFailed, "systemd units have no notify action");
    case OpKind::kReload:
      return complete(r.id, OpOutcome::kFailed, "systemd units are restarted, not reloaded");
  }
  begin_command(op, std::move(argv), base_environment(r));
}

void SystemdRunner::on_result(Op& op, const CheckResult& res) {
  const OpRequest& r = op.request;
  if (r.kind == OpKind::kProbe || r.kind == OpKind::kMonitor)
    return complete(r.id, res.ok ? OpOutcome::kOk : OpOutcome::kNotRunning, res.detail);
  complete(r.id, res.ok ? OpOutcome::kOk : OpOutcome::kFailed, res.detail);
}

}  // namespace bulwark
