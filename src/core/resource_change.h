// What a change of a resource's definition means for an instance that runs
// the old one: nothing, an update in place, a reload, or a restart. The
// node agent acts on it (stop with the old definition, start with the new)
// and `bulwark apply --dry-run` shows it, so both decide with this one
// function.
//
//   restart  what runs differs: the agent class, OCF agent, systemd unit,
//            exec command, user, working directory, parameters (exec: its
//            environment), a VIP's address, or the kind (singleton, clone,
//            promotable);
//   reload   only parameters the OCF agent can reload changed (ReloadTraits:
//            OCF 1.1 `reload-agent` with reloadable="1" parameters, or a
//            legacy `reload` action with the parameters not marked unique,
//            as Pacemaker decides);
//   update   only how Bulwark runs it changed (monitor, timeouts,
//            thresholds, stickiness, clone counts, notify, a proxy's
//            configuration, which bulwark-proxy reloads itself): applied at
//            once, nothing restarts;
//   none     identical.
#pragma once

#include <string>
#include <vector>

#include "core/resource_config.h"

namespace bulwark {

enum class ChangeEffect { kNone, kUpdate, kReload, kRestart };
const char* change_effect_name(ChangeEffect effect);

struct SpecChange {
  ChangeEffect effect = ChangeEffect::kNone;
  // What differs, for people: "command", "params (state)", "monitor", ...
  // (for a restart, only what forces it).
  std::vector<std::string> what;
  std::string describe() const;  // "command, params (state)"
};

// `running` is the definition an instance runs with, `desired` the applied
// one. The reload traits of `desired` decide whether a reload will do.
SpecChange compare_specs(const ResourceSpec& running, const ResourceSpec& desired);

// A short digest of what runs (everything a restart or a reload would
// change): an instance publishes the digest of its running definition, so
// that every node can tell, from the status records alone, which instances
// of a clone still run an older definition (NodeAgent's rolling restart).
std::string run_fingerprint(const ResourceSpec& spec);

}  // namespace bulwark
