#include "classes/proxy/proxy_runner.h"

#include <filesystem>
#include <fstream>

namespace bulwark {

ClassRunnerFactory proxy_class(std::string binary) {
  return [binary = std::move(binary)](const ClassContext& context) -> std::unique_ptr<ClassRunner> {
    return std::make_unique<ProxyRunner>(context, binary);
  };
}

ProxyRunner::ProxyRunner(const ClassContext& context, std::string binary)
    : runtime_dir_(context.runtime_dir),
      binary_(std::move(binary)),
      exec_(context),
      controller_(context.clock, context.runtime_dir) {}

void ProxyRunner::begin(const OpRequest& request) {
  // The first start writes a file with no servers and no loopback
  // frontends; the controller fills it in as soon as the proxy runs.
  const std::string path = proxy_config_path(runtime_dir_, request.vars.resource);
  if (request.kind == OpKind::kStart && !std::filesystem::exists(path)) {
    auto text =
        render_cluster_proxy_config(request.spec, ResourceConfig{}, runtime_dir_, ProxyInputs{});
    if (!text) {
      refused_.push_back(OpCompletion{request.id, request.vars.resource, request.kind,
                                      OpOutcome::kFailed, text.error().message});
      return;
    }
    std::ofstream(path) << *text;
  }
  OpRequest as_exec = request;
  as_exec.spec.agent.command = {binary_, "--config", path};
  exec_.begin_as(as_exec, request.spec);
}

void ProxyRunner::take_completions(std::vector<OpCompletion>& out) {
  for (auto& c : refused_) out.push_back(std::move(c));
  refused_.clear();
  exec_.take_completions(out);
}

}  // namespace bulwark
