#include "sim/schedule.h"

#include <algorithm>

#include "sim/sim_random.h"
#include "sim/sim_resources.h"

namespace bulwark::sim {
namespace {

// Without fencing or a watchdog nothing stops the processes of a paused
// daemon when its lease runs out, so only pauses well inside the
// coordinator's lease margin are injected.
constexpr int64_t kUnprotectedPauseMaxMs = 40;
constexpr int kFaultsMax = 8;

template <class T>
const T& pick(Rng& rng, const std::vector<T>& v) {
  return v[static_cast<std::size_t>(rng.range(0, static_cast<int64_t>(v.size()) - 1))];
}

Fault make_fault(Rng& rng, const Schedule& s) {
  Fault f;
  f.at_ms = rng.range(0, s.fault_window_ms - 1);
  f.node = static_cast<int>(rng.range(0, s.nodes - 1));
  f.other = static_cast<int>((f.node + rng.range(1, s.nodes - 1)) % s.nodes);
  f.duration_ms = rng.range(50, 3000);
  f.resource = pick(rng, all_resources());
  // Weights per kind; daemon-only crashes and long pauses only where a fence
  // agent or a watchdog covers them.
  const bool covered = s.protection != Protection::kLeaseOnly;
  const int64_t roll = rng.range(0, 99);
  if (roll < 12) {
    f.kind = FaultKind::kPowerLoss;
  } else if (roll < 20) {
    f.kind = covered ? FaultKind::kDaemonCrash : FaultKind::kPowerLoss;
  } else if (roll < 32) {
    f.kind = FaultKind::kPause;
    f.duration_ms = covered ? rng.range(10, 2000) : rng.range(1, kUnprotectedPauseMaxMs);
  } else if (roll < 50) {
    f.kind = FaultKind::kPartition;
    // A random proper subset: a minority, a majority, or an even split of 5.
    for (int i = 0; i < s.nodes; ++i) {
      if (rng.chance(400)) f.side.push_back(i);
    }
    if (f.side.empty()) f.side.push_back(f.node);
    if (static_cast<int>(f.side.size()) == s.nodes) f.side.pop_back();
  } else if (roll < 58) {
    f.kind = FaultKind::kOneWay;
  } else if (roll < 64) {
    f.kind = FaultKind::kLossyLink;
    f.per_mille = static_cast<int>(rng.range(200, 900));
  } else if (roll < 76) {
    f.kind = FaultKind::kResourceCrash;
  } else if (roll < 86) {
    f.kind = FaultKind::kStartFails;
  } else if (roll < 93) {
    f.kind = FaultKind::kStopHangs;
    f.resource = pick(rng, exec_resources());
  } else {
    f.kind = FaultKind::kPromoteFails;
    f.resource = "db";
  }
  return f;
}

Fault make_operator_action(Rng& rng, const Schedule& s) {
  Fault f;
  f.at_ms = rng.range(0, s.fault_window_ms - 1);
  f.node = static_cast<int>(rng.range(0, s.nodes - 1));
  f.duration_ms = rng.range(50, 3000);
  f.resource = pick(rng, all_resources());
  const int64_t roll = rng.range(0, 99);
  f.kind = roll < 40   ? FaultKind::kRedefine
           : roll < 60 ? FaultKind::kRestart
           : roll < 80 ? FaultKind::kMaintenance
                       : FaultKind::kUnmanage;
  return f;
}

}  // namespace

Schedule make_schedule(uint64_t seed) {
  Rng rng(seed);
  Schedule s;
  s.seed = seed;
  s.nodes = rng.chance(200) ? 5 : 3;
  const int64_t protection = rng.range(0, 99);
  s.protection = protection < 35   ? Protection::kLeaseOnly
                 : protection < 70 ? Protection::kFencing
                                   : Protection::kWatchdog;
  s.network.delay_max_ms = static_cast<int>(rng.range(0, 5));
  s.network.spike_per_mille = static_cast<int>(rng.range(0, 30));
  s.network.spike_max_ms = static_cast<int>(rng.range(10, 150));
  s.network.drop_per_mille = static_cast<int>(rng.range(0, 40));
  for (int i = 0; i < s.nodes; ++i) {
    s.boot_ms.push_back(rng.range(0, 300));
    s.clock_offset_ms.push_back(rng.range(0, 1000000));
  }
  s.fault_window_ms = rng.range(300, 4000);
  s.start_fail_per_mille = rng.chance(300) ? static_cast<int>(rng.range(10, 200)) : 0;
  const int64_t count = rng.range(1, kFaultsMax);
  for (int64_t i = 0; i < count; ++i) s.faults.push_back(make_fault(rng, s));
  // Operator actions come from draws after the faults': a seed keeps the
  // faults it had before they existed.
  const int64_t actions = rng.range(0, kOperatorActionsMax);
  for (int64_t i = 0; i < actions; ++i) s.faults.push_back(make_operator_action(rng, s));
  std::stable_sort(s.faults.begin(), s.faults.end(),
                   [](const Fault& a, const Fault& b) { return a.at_ms < b.at_ms; });
  return s;
}

std::string describe(const Fault& f, const std::vector<std::string>& names) {
  const std::string node = names[f.node];
  const std::string other = names[f.other];
  const std::string dur = " for " + std::to_string(f.duration_ms) + " ms";
  switch (f.kind) {
    case FaultKind::kPowerLoss:
      return "power loss of " + node + dur;
    case FaultKind::kDaemonCrash:
      return "bulwarkd of " + node + " crashes" + dur + " (processes run on)";
    case FaultKind::kPause:
      return "bulwarkd of " + node + " paused" + dur;
    case FaultKind::kPartition: {
      std::string side;
      for (int i : f.side) side += (side.empty() ? "" : ",") + names[i];
      return "partition {" + side + "} from the rest" + dur;
    }
    case FaultKind::kOneWay:
      return "link " + node + " -> " + other + " cut" + dur;
    case FaultKind::kLossyLink:
      return "link " + node + " -> " + other + " loses " + std::to_string(f.per_mille) +
             " per mille" + dur;
    case FaultKind::kResourceCrash:
      return f.resource + " crashes on " + node;
    case FaultKind::kStartFails:
      return "next start of " + f.resource + " on " + node + " fails";
    case FaultKind::kStopHangs:
      return "next stop of " + f.resource + " on " + node + " hangs";
    case FaultKind::kPromoteFails:
      return "next promotion of " + f.resource + " on " + node + " fails";
    case FaultKind::kRedefine:
      return "the operator applies a file that changes what " + f.resource + " runs";
    case FaultKind::kRestart:
      return "the operator restarts " + f.resource;
    case FaultKind::kMaintenance:
      return "the operator puts " + node + " in maintenance" + dur;
    case FaultKind::kUnmanage:
      return "the operator unmanages " + f.resource + dur;
  }
  return "?";
}

const char* protection_name(Protection p) {
  switch (p) {
    case Protection::kLeaseOnly:
      return "lease only";
    case Protection::kFencing:
      return "fencing";
    case Protection::kWatchdog:
      return "watchdog";
  }
  return "?";
}

std::string describe(const Schedule& s) {
  std::vector<std::string> names;
  for (int i = 0; i < s.nodes; ++i) names.push_back("n" + std::to_string(i + 1));
  std::string out = "seed " + std::to_string(s.seed) + ": " + std::to_string(s.nodes) + " nodes, " +
                    protection_name(s.protection) + ", network delay 0-" +
                    std::to_string(s.network.delay_max_ms) + " ms (" +
                    std::to_string(s.network.spike_per_mille) + "/1000 up to " +
                    std::to_string(s.network.spike_max_ms) + " ms), drop " +
                    std::to_string(s.network.drop_per_mille) + "/1000, start failures " +
                    std::to_string(s.start_fail_per_mille) + "/1000 while faulty\n";
  for (const auto& f : s.faults)
    out += "  at faults+" + std::to_string(f.at_ms) + " ms: " + describe(f, names) + "\n";
  out += "  every fault ends at faults+" + std::to_string(s.fault_window_ms) + " ms";
  return out;
}

}  // namespace bulwark::sim
