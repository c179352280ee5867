#include "sim/sim_processes.h"

#include "core/check.h"
#include "core/resource_change.h"

namespace bulwark::sim {

const Instance& Processes::get(int node, const std::string& resource) const {
  static const Instance kNone;
  const auto it = nodes_[node].find(resource);
  return it == nodes_[node].end() ? kNone : it->second;
}

Instance* Processes::find(int node, const std::string& resource, uint64_t life) {
  const auto it = nodes_[node].find(resource);
  if (it == nodes_[node].end() || !it->second.running) return nullptr;
  if (life != 0 && it->second.life != life) return nullptr;
  return &it->second;
}

uint64_t Processes::spawn(int node, const std::string& resource, int64_t now_ms,
                          const RunningDefinition& definition) {
  Instance& i = nodes_[node][resource];
  if (i.running) return i.life;
  i = Instance{true, false, next_life_++, now_ms, definition, run_fingerprint(definition.spec)};
  ++changes_;
  ++starts_;
  trace_.add(names_[node], "* " + resource + " process started");
  return i.life;
}

void Processes::promote(int node, const std::string& resource, uint64_t life) {
  Instance* i = find(node, resource, life);
  if (!i || i->promoted) return;
  i->promoted = true;
  ++changes_;
  trace_.add(names_[node], "* " + resource + " promoted");
}

void Processes::demote(int node, const std::string& resource, uint64_t life,
                       const std::string& why) {
  Instance* i = find(node, resource, life);
  if (!i || !i->promoted) return;
  i->promoted = false;
  ++changes_;
  trace_.add(names_[node], "* " + resource + " demoted (" + why + ")");
}

void Processes::kill(int node, const std::string& resource, uint64_t life, const std::string& why) {
  Instance* i = find(node, resource, life);
  if (!i) return;
  i->running = false;
  i->promoted = false;
  ++changes_;
  trace_.add(names_[node], "* " + resource + " process exited (" + why + ")");
  if (on_exit) on_exit(node, resource);
}

void Processes::power_off(int node) {
  for (auto& [resource, i] : nodes_[node]) {
    if (!i.running) continue;
    i.running = false;
    i.promoted = false;
    ++changes_;
  }
  trace_.add(names_[node], "* every process gone (power off)");
}

uint64_t Processes::schedule(int64_t at_ms, int node, const std::string& resource, uint64_t life,
                             EffectKind kind, const std::string& why) {
  BW_ASSERT(effects_.size() < 10000, "effects pile up: a runner leaks them");
  const uint64_t id = next_effect_++;
  effects_.emplace(id, Effect{at_ms, node, resource, life, kind, why});
  return id;
}

void Processes::advance(int64_t now_ms) {
  // Effects due at the same millisecond apply in the order they were made.
  for (auto it = effects_.begin(); it != effects_.end();) {
    if (it->second.at_ms > now_ms) {
      ++it;
      continue;
    }
    const Effect e = it->second;
    it = effects_.erase(it);
    if (e.kind == EffectKind::kExit) {
      kill(e.node, e.resource, e.life, e.why);
    } else {
      demote(e.node, e.resource, e.life, e.why);
    }
    // kill() may have run an on_exit that scheduled or cancelled effects:
    // start again from the front (bounded: each pass removes one effect).
    it = effects_.begin();
  }
}

}  // namespace bulwark::sim
