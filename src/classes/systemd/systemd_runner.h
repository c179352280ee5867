// The built-in `systemd` agent class: `systemctl start`, `stop` and
// `is-active` of a unit, where systemd is PID 1. On a machine without
// systemd a unit is not running, stops trivially, and fails to start.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <string>

#include "agent/command_class.h"

namespace bulwark {

struct SystemdClassOptions {
  std::string systemctl = "/usr/bin/systemctl";
  std::string marker = "/run/systemd/system";  // exists iff systemd is PID 1
};

// The `systemd` class, for ClassDispatcherOptions::classes.
ClassRunnerFactory systemd_class(SystemdClassOptions options = {});

class SystemdRunner final : public CommandClass {
 public:
  SystemdRunner(const ClassContext& context, SystemdClassOptions options);

 private:
  void start(Op& op) override;
  void on_result(Op& op, const CheckResult& result) override;

  SystemdClassOptions options_;
};

}  // namespace bulwark
