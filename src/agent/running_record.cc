#include "agent/running_record.h"

#include <spdlog/spdlog.h>

#include <iterator>
#include <nlohmann/json.hpp>

#include "core/json_input.h"

namespace bulwark {

// Every field of a resource's definition, by name; a field the file lacks
// keeps its default.
NLOHMANN_JSON_SERIALIZE_ENUM(AgentClass, {{AgentClass::kExec, "exec"},
                                          {AgentClass::kOcf, "ocf"},
                                          {AgentClass::kSystemd, "systemd"},
                                          {AgentClass::kVip, "vip"},
                                          {AgentClass::kProxy, "proxy"}})
NLOHMANN_JSON_SERIALIZE_ENUM(ResourceKind, {{ResourceKind::kSingleton, "singleton"},
                                            {ResourceKind::kClone, "clone"},
                                            {ResourceKind::kPromotable, "promotable"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(VipSpec, address, ipv6, prefix, interface, label,
                                                conflict_probe_ms, loopback)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReloadTraits, action, params)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AgentSpec, agent_class, provider, type, unit,
                                                command, params, user, working_dir, vip, proxy,
                                                proxy_sources, reload)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MonitorSpec, interval_ms, timeout_ms, tcp, http)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ResourceSpec, name, agent, kind, clone_max,
                                                promoted_max, monitor, start_timeout_ms,
                                                stop_timeout_ms, notify, notify_timeout_ms,
                                                migration_threshold, failure_timeout_ms, stickiness,
                                                enabled)

std::string encode_running(const RunningDefinition& running) {
  return nlohmann::json{
      {"version", 1}, {"spec", running.spec}, {"restart_generation", running.restart_generation}}
      .dump();
}

std::optional<RunningDefinition> decode_running(const std::string& text) {
  const nlohmann::json j = parse_json_input(text);
  if (!j.is_object() || j.value("version", 0) != 1) return std::nullopt;
  try {
    RunningDefinition out;
    out.spec = j.at("spec").get<ResourceSpec>();
    out.restart_generation = j.value("restart_generation", int64_t{0});
    return out;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::optional<RunningDefinition> read_running(std::istream& in, const std::string& path) {
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) return std::nullopt;
  auto out = decode_running(text);
  if (!out) spdlog::warn("agent: the definition in {} cannot be read; ignored", path);
  return out;
}

}  // namespace bulwark
