// The placement policy's speed (issue 4: 10,000 resources on 16 nodes in at
// most 100 ms), with Google Benchmark. The resources mix the kinds and the
// constraints the way a large control plane would: mostly singletons, some
// clones and promotables, groups, colocations, orders and location rules,
// half of them already running (stickiness in play).
#include <benchmark/benchmark.h>

#include <string>

#include "classes/registry/agent_classes.h"
#include "coordinator/placement_policy.h"

namespace bulwark {
namespace {

std::string resources_yaml(int count) {
  std::string y = "resources:\n";
  for (int i = 0; i < count; ++i) {
    const std::string n = "r" + std::to_string(i);
    y += "  - {name: " + n + ", agent: exec, command: [/bin/sleep, '1']";
    if (i % 10 == 1) y += ", clone: {max: 3}";
    if (i % 50 == 7) y = y.substr(0, y.rfind(", agent")) + ", agent: 'ocf:x:y', promotable: {}";
    y += "}\n";
  }
  y += "groups:\n";
  for (int i = 0; i + 2 < count; i += 100) {
    y += "  - {name: g" + std::to_string(i) + ", resources: [r" + std::to_string(i) + ", r" +
         std::to_string(i + 2) + "]}\n";
  }
  y += "constraints:\n";
  for (int i = 3; i + 1 < count; i += 20) {
    y += "  - {colocate: r" + std::to_string(i) + ", with: r" + std::to_string(i + 1) + "}\n";
    y += "  - {order: [r" + std::to_string(i + 1) + ", r" + std::to_string(i) + "]}\n";
  }
  for (int i = 5; i < count; i += 10)
    y += "  - {location: r" + std::to_string(i) + ", prefer: {zone: z" + std::to_string(i % 4) +
         "}, score: 50}\n";
  return y;
}

void BM_Placement(benchmark::State& state) {
  const int resources = static_cast<int>(state.range(0));
  const int nodes = static_cast<int>(state.range(1));
  auto config =
      parse_resource_config(resources_yaml(resources), "bench.yaml", agent_class_syntaxes());
  if (!config) {
    state.SkipWithError(config.error().message.c_str());
    return;
  }
  PolicyInput in;
  in.config = &*config;
  for (int i = 0; i < nodes; ++i) {
    PolicyNode n;
    n.name = "n" + std::to_string(i);
    n.attributes["zone"] = "z" + std::to_string(i % 4);
    in.nodes.push_back(n);
  }
  // Half the resources already run somewhere: the common case of a
  // coordinator recomputing after one change.
  const Placement first = compute_placement(in);
  int i = 0;
  for (const auto& [name, p] : first.resources) {
    if (i++ % 2) continue;
    for (const auto& node : p.nodes) in.running[name].push_back({node, false});
  }
  for (auto _ : state) benchmark::DoNotOptimize(compute_placement(in));
  state.counters["resources"] = resources;
  state.counters["nodes"] = nodes;
}

BENCHMARK(BM_Placement)
    ->Args({1000, 3})
    ->Args({10000, 16})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

}  // namespace
}  // namespace bulwark

BENCHMARK_MAIN();
