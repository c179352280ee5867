#include "core/resource_change.h"

#include <algorithm>
#include <cstdint>
#include <set>

namespace bulwark {
namespace {

// Parameter names whose values differ, or that one side lacks.
std::set<std::string> changed_params(const std::map<std::string, std::string>& a,
                                     const std::map<std::string, std::string>& b) {
  std::set<std::string> out;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second != v) out.insert(k);
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) out.insert(k);
  }
  return out;
}

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

const char* change_effect_name(ChangeEffect effect) {
  switch (effect) {
    case ChangeEffect::kNone:
      return "none";
    case ChangeEffect::kUpdate:
      return "update";
    case ChangeEffect::kReload:
      return "reload";
    case ChangeEffect::kRestart:
      return "restart";
  }
  return "none";
}

std::string SpecChange::describe() const {
  std::string out;
  for (const auto& w : what) out += (out.empty() ? "" : ", ") + w;
  return out;
}

std::string run_fingerprint(const ResourceSpec& spec) {
  // Each field with its length, so that no two definitions read alike.
  std::string text;
  const auto add = [&text](const std::string& field) {
    text += std::to_string(field.size()) + ":" + field + ";";
  };
  const AgentSpec& a = spec.agent;
  add(std::to_string(static_cast<int>(a.agent_class)));
  add(a.provider);
  add(a.type);
  add(a.unit);
  for (const auto& c : a.command) add(c);
  add("|");
  for (const auto& [k, v] : a.params) {
    add(k);
    add(v);
  }
  add(a.user);
  add(a.working_dir);
  add(std::to_string(static_cast<int>(spec.kind)));
  // FNV-1a, 64 bits: a digest to compare, not a secret.
  uint64_t h = 14695981039346656037ULL;
  for (const unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static const char* kHex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[i] = kHex[h & 0xf];
  return out;
}

SpecChange compare_specs(const ResourceSpec& running, const ResourceSpec& desired) {
  const AgentSpec& a = running.agent;
  const AgentSpec& b = desired.agent;
  std::vector<std::string> restart;
  if (a.agent_class != b.agent_class || a.provider != b.provider || a.type != b.type)
    restart.push_back("agent");
  if (a.unit != b.unit) restart.push_back("unit");
  if (a.command != b.command) restart.push_back("command");
  if (a.user != b.user) restart.push_back("user");
  if (a.working_dir != b.working_dir) restart.push_back("working_dir");
  if (running.kind != desired.kind) restart.push_back("kind");
  const std::set<std::string> params = changed_params(a.params, b.params);
  bool reload = false;
  if (!params.empty()) {
    // Only an OCF agent that says it can reload every changed parameter
    // reloads; any other parameter change (an exec resource's environment,
    // a VIP's address) restarts.
    const bool reloadable =
        restart.empty() && b.agent_class == AgentClass::kOcf && !b.reload.action.empty() &&
        std::all_of(params.begin(), params.end(),
                    [&](const std::string& p) { return b.reload.params.count(p) != 0; });
    if (reloadable) {
      reload = true;
    } else {
      restart.push_back("params (" + join(params) + ")");
    }
  }
  SpecChange out;
  if (!restart.empty()) {
    out.effect = ChangeEffect::kRestart;
    out.what = std::move(restart);
    return out;
  }
  if (reload) {
    out.effect = ChangeEffect::kReload;
    out.what.push_back("params (" + join(params) + ")");
  }
  // What only Bulwark uses: updated in place.
  std::vector<std::string> update;
  const MonitorSpec& m = running.monitor;
  const MonitorSpec& n = desired.monitor;
  if (m.interval_ms != n.interval_ms || m.timeout_ms != n.timeout_ms || m.tcp != n.tcp ||
      m.http != n.http)
    update.push_back("monitor");
  if (running.start_timeout_ms != desired.start_timeout_ms ||
      running.stop_timeout_ms != desired.stop_timeout_ms ||
      running.notify_timeout_ms != desired.notify_timeout_ms)
    update.push_back("timeouts");
  if (running.clone_max != desired.clone_max || running.promoted_max != desired.promoted_max)
    update.push_back("instance counts");
  if (running.notify != desired.notify) update.push_back("notify");
  if (running.migration_threshold != desired.migration_threshold ||
      running.failure_timeout_ms != desired.failure_timeout_ms ||
      running.stickiness != desired.stickiness)
    update.push_back("failure and placement settings");
  if (running.enabled != desired.enabled) update.push_back("enabled");
  if (a.proxy != b.proxy || a.proxy_sources != b.proxy_sources)
    update.push_back("proxy configuration (bulwark-proxy reloads it)");
  if (!update.empty() && out.effect == ChangeEffect::kNone) out.effect = ChangeEffect::kUpdate;
  out.what.insert(out.what.end(), update.begin(), update.end());
  return out;
}

}  // namespace bulwark
