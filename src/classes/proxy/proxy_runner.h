// The built-in `proxy` agent class: bulwark-proxy run as an exec resource
// (ExecRunner: its pid file, adoption, stop) on a configuration file in the
// runtime directory, which ProxyController keeps true to the cluster on
// every turn of the agent's loop (follow) and has the proxy reload.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <string>

#include "classes/exec/exec_runner.h"
#include "classes/proxy/proxy_controller.h"

namespace bulwark {

// The `proxy` class, for ClassDispatcherOptions::classes: runs `binary`.
ClassRunnerFactory proxy_class(std::string binary);

class ProxyRunner final : public ClassRunner {
 public:
  ProxyRunner(const ClassContext& context, std::string binary);

  void begin(const OpRequest& request) override;
  void cancel(uint64_t id) override { exec_.cancel(id); }
  void on_event(uint64_t tag, uint32_t events) override { exec_.on_event(tag, events); }
  void tick() override { exec_.tick(); }
  int64_t next_deadline_ms() const override { return exec_.next_deadline_ms(); }
  void take_completions(std::vector<OpCompletion>& out) override;
  bool records_definitions() const override { return true; }
  std::optional<RunningDefinition> recorded(const std::string& resource) const override {
    return exec_.recorded(resource);
  }
  void follow(const ClusterState& state, const std::string& self,
              const NodeStatusRecord& local) override {
    controller_.sync(state, self, local);
  }
  std::vector<ServerDrain> take_drained() override { return controller_.take_drained(); }

 private:
  std::string runtime_dir_;
  std::string binary_;
  ExecRunner exec_;
  ProxyController controller_;
  std::vector<OpCompletion> refused_;  // operations that never reached exec_
};

}  // namespace bulwark
