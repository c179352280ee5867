// The node agent's test harness: a fake clock, a fake runner that records
// every operation the agent begins, and a Harness through which a test
// places resources, steps the agent and answers its operations.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/node_agent.h"
#include "classes/registry/agent_classes.h"
#include "core/env.h"
#include "fake_clock.h"

namespace bulwark::agent_test {

using Ops = std::vector<std::string>;

using test_support::FakeClock;

// Records operations; the test answers them through Harness::answer.
class FakeRunner : public OperationRunner {
 public:
  void begin(const OpRequest& request) override {
    begun.push_back(request);
    pending[request.id] = request;
  }
  void cancel(uint64_t id) override {
    cancelled.push_back(id);
    pending.erase(id);
  }
  std::optional<RunningDefinition> recorded(const std::string& resource) const override {
    auto it = records.find(resource);
    if (it == records.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, RunningDefinition> records;  // what recorded() answers
  std::vector<OpRequest> begun;
  std::map<uint64_t, OpRequest> pending;
  std::vector<uint64_t> cancelled;
};

// Every timeout differs, so an operation's string names the timeout it got.
inline constexpr const char* kResources =
    "resources:\n"
    "  - name: s\n"
    "    agent: exec\n"
    "    command: [/bin/s]\n"
    "    monitor: {interval_ms: 1000, timeout_ms: 500}\n"
    "    start_timeout_ms: 3000\n"
    "    stop_timeout_ms: 4000\n"
    "  - name: c\n"
    "    agent: exec\n"
    "    command: [/bin/c]\n"
    "    clone: {}\n"
    "    monitor: {interval_ms: 1000, timeout_ms: 500}\n"
    "    start_timeout_ms: 3000\n"
    "    stop_timeout_ms: 4000\n"
    "  - name: db\n"
    "    agent: 'ocf:x:db'\n"
    "    promotable: {promoted: 1}\n"
    "    monitor: {interval_ms: 1000, timeout_ms: 500}\n"
    "    start_timeout_ms: 3000\n"
    "    stop_timeout_ms: 4000\n";

inline std::shared_ptr<const ResourceConfig> parse(const std::string& yaml) {
  auto c = parse_resource_config(yaml, "test.yaml", agent_class_syntaxes());
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return std::make_shared<const ResourceConfig>(c.ok() ? *c : ResourceConfig{});
}

// One node agent ("n1") holding its lease with 300 ms left, under a
// placement record it can be told to claim.
struct Harness {
  FakeClock clock{1000};
  FakeRunner runner;
  NodeAgent agent;
  AgentView view;
  std::map<std::string, NodeStatusRecord> statuses;  // other nodes' records
  std::size_t reported = 0;                          // runner.begun already returned by ops()

  explicit Harness(const std::string& yaml = kResources)
      : agent(clock, runner, AgentOptions{"n1", "10.0.0.1", 100}) {
    view.store_loaded = true;
    view.config = parse(yaml);
    view.holds_lease = true;
    view.lease_remaining_ms = 300;
    view.statuses = &statuses;
  }

  void step() { agent.step(view); }
  // The operations begun since the last call, as "KIND RESOURCE TIMEOUT_MS".
  Ops ops() {
    Ops out;
    for (; reported < runner.begun.size(); ++reported) {
      const OpRequest& r = runner.begun[reported];
      out.push_back(std::string(op_kind_name(r.kind)) + " " + r.vars.resource + " " +
                    std::to_string(r.timeout_ms));
    }
    return out;
  }
  Ops step_ops() {
    step();
    return ops();
  }
  // Answers the one operation in flight for `resource`.
  void answer(const std::string& resource, OpOutcome outcome, const std::string& detail = "") {
    const OpRequest* found = nullptr;
    for (const auto& [id, r] : runner.pending) {
      if (r.vars.resource != resource) continue;
      ASSERT_EQ(found, nullptr) << "two operations in flight for " << resource;
      found = &r;
    }
    ASSERT_NE(found, nullptr) << "no operation in flight for " << resource;
    const OpCompletion c{found->id, resource, found->kind, outcome, detail};
    runner.pending.erase(found->id);
    agent.on_completion(c);
  }
  void exited(const std::string& resource) {
    agent.on_completion(OpCompletion{.id = 0,
                                     .resource = resource,
                                     .kind = OpKind::kMonitor,
                                     .outcome = OpOutcome::kNotRunning,
                                     .detail = "exited"});
  }
  // Places `resource` and commits the placement under a new revision.
  void place(const std::string& resource, std::vector<std::string> nodes,
             std::vector<std::string> promoted = {}) {
    if (!view.placement) {
      view.placement = PlacementRecord{};
      view.placement->mod_revision = 100;
    }
    view.placement->resources[resource] =
        PlacedResource{.nodes = nodes, .promoted = promoted, .reason = ""};
    view.placement->mod_revision += 10;
  }
  int64_t revision() const { return view.placement->mod_revision; }
  void set_lease(bool holds, int64_t remaining_ms) {
    view.holds_lease = holds;
    view.lease_remaining_ms = holds ? remaining_ms : 0;
  }
  void advance(int64_t ms) { clock.set_mono_ms(clock.mono_ms() + ms); }
  void at(int64_t ms) { clock.set_mono_ms(ms); }
  int64_t now() const { return clock.mono_ms(); }

  bool listed(const std::string& resource) const {
    return agent.status().resources.count(resource) != 0;
  }
  InstanceStatus status(const std::string& resource) const {
    const NodeStatusRecord rec = agent.status();
    auto it = rec.resources.find(resource);
    EXPECT_NE(it, rec.resources.end()) << resource << " is not in the status";
    return it == rec.resources.end() ? InstanceStatus{} : it->second;
  }
  InstanceState state(const std::string& resource) const { return status(resource).state; }

  // Probes everything (the first step) and answers each probe.
  void probe(const std::map<std::string, OpOutcome>& outcomes) {
    step();
    for (const auto& [resource, outcome] : outcomes) answer(resource, outcome);
    ops();
  }
  // The usual start: every resource probed not running except those given.
  void probe_all_stopped_except(const std::map<std::string, OpOutcome>& running = {}) {
    std::map<std::string, OpOutcome> all = {{"s", OpOutcome::kNotRunning},
                                            {"c", OpOutcome::kNotRunning},
                                            {"db", OpOutcome::kNotRunning}};
    for (const auto& [r, o] : running) all[r] = o;
    probe(all);
  }
  // s placed here, claimed and started; the agent idle afterwards.
  void run_singleton() {
    place("s", {"n1"});
    probe_all_stopped_except();
    EXPECT_EQ(step_ops(), Ops{});
    agent.on_claimed(revision());
    EXPECT_EQ(step_ops(), Ops{"start s 3000"});
    answer("s", OpOutcome::kOk);
    EXPECT_EQ(state("s"), InstanceState::kStarted);
  }
};

inline const char* state_name(InstanceState s) { return instance_state_name(s); }

}  // namespace bulwark::agent_test
