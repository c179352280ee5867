// The resources file every simulated cluster applies: a clone, two
// singletons with a colocation and an order constraint, a group of two,
// and a promotable with notifications (an OCF agent, so that it can be
// promoted and notified). Timeouts are
// short so that a schedule fits in a few simulated seconds; failures are
// forgotten after failure_timeout_ms so that every resource must run again
// once the faults are over.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace bulwark::sim {

inline const char* base_resources_yaml() {
  return R"(resources:
  - name: api
    agent: exec
    command: [/usr/bin/sim-api, "${BULWARK_NODE}"]
    clone: {}
    monitor: {interval_ms: 400, timeout_ms: 400}
    start_timeout_ms: 1000
    stop_timeout_ms: 500
    failure_timeout_ms: 2500
  - name: volume
    agent: exec
    command: [/usr/bin/sim-volume]
    monitor: {interval_ms: 400, timeout_ms: 400}
    start_timeout_ms: 1000
    stop_timeout_ms: 500
    failure_timeout_ms: 2500
  - name: scheduler
    agent: exec
    command: [/usr/bin/sim-scheduler]
    monitor: {interval_ms: 400, timeout_ms: 400}
    start_timeout_ms: 1000
    stop_timeout_ms: 500
    failure_timeout_ms: 2500
  - name: vip
    agent: exec
    command: [/usr/bin/sim-vip]
    monitor: {interval_ms: 400, timeout_ms: 400}
    start_timeout_ms: 1000
    stop_timeout_ms: 500
    failure_timeout_ms: 2500
  - name: lb
    agent: exec
    command: [/usr/bin/sim-lb]
    monitor: {interval_ms: 400, timeout_ms: 400}
    start_timeout_ms: 1000
    stop_timeout_ms: 500
    failure_timeout_ms: 2500
  - name: db
    agent: ocf:sim:db
    promotable: {promoted: 1, notify: true}
    monitor: {interval_ms: 400, timeout_ms: 400}
    start_timeout_ms: 1000
    stop_timeout_ms: 500
    notify_timeout_ms: 400
    failure_timeout_ms: 2500
groups:
  - name: front
    resources: [vip, lb]
constraints:
  - colocate: scheduler
    with: volume
  - order: [volume, scheduler]
)";
}

// The file with what some resources run changed (an operator's apply):
// resource -> its version; an exec resource's command gets "--vN", the OCF
// one a parameter v: N. Each change restarts the resource.
inline std::string resources_yaml(const std::map<std::string, int>& versions = {}) {
  std::string text = base_resources_yaml();
  for (const auto& [name, version] : versions) {
    if (version == 0) continue;
    const std::string v = std::to_string(version);
    if (name == "db") {
      const std::string agent = "agent: ocf:sim:db\n";
      text.insert(text.find(agent) + agent.size(), "    params: {v: \"" + v + "\"}\n");
      continue;
    }
    const std::string command = "[/usr/bin/sim-" + name;
    text.insert(text.find(command) + command.size(), ", \"--v" + v + "\"");
  }
  return text;
}

// Resources whose stop can hang until SIGKILL (exec: the kill always works).
inline std::vector<std::string> exec_resources() {
  return {"api", "volume", "scheduler", "vip", "lb"};
}
inline std::vector<std::string> all_resources() {
  return {"api", "volume", "scheduler", "vip", "lb", "db"};
}

}  // namespace bulwark::sim
