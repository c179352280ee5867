// Tests of how the node agent acts on changes (issue 12): a changed
// definition restarts an instance (stop with the old one, start with the
// new), a reloadable change reloads it, a setting only Bulwark uses
// applies in place, a clone restarts one instance at a time by a rule every
// node applies alike, `resource restart`, instances left alone in
// maintenance and when unmanaged (also at shutdown), `cleanup --force`,
// and a failed proxy source that is not drained.
#include <gtest/gtest.h>

#include "agent/node_agent.h"
#include "agent/node_agent_harness.h"

namespace bulwark {
namespace {

using agent_test::Harness;
using agent_test::kResources;
using agent_test::Ops;
using agent_test::parse;

// kResources with one edit.
std::string edited(const std::string& from, const std::string& to) {
  std::string yaml = kResources;
  const auto at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return yaml.replace(at, from.size(), to);
}

const OpRequest& last(const Harness& h) { return h.runner.begun.back(); }

TEST(NodeAgentChangeTest, AChangedCommandStopsTheOldDefinitionAndStartsTheNew) {
  Harness h;
  h.run_singleton();
  h.view.config = parse(edited("[/bin/s]", "[/bin/s, --new]"));
  EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});
  EXPECT_EQ(last(h).spec.agent.command, std::vector<std::string>{"/bin/s"});  // the old one
  EXPECT_TRUE(h.status("s").outdated);
  h.answer("s", OpOutcome::kOk);
  // Restarted in place under the claim it holds.
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
  EXPECT_EQ(last(h).spec.agent.command, (std::vector<std::string>{"/bin/s", "--new"}));
  h.answer("s", OpOutcome::kOk);
  EXPECT_FALSE(h.status("s").outdated);
  EXPECT_EQ(h.status("s").fail_count, 0);
  h.advance(5000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor s 500"});  // and no second restart
}

TEST(NodeAgentChangeTest, AMonitorChangeAppliesInPlace) {
  Harness h;
  h.run_singleton();
  h.view.config =
      parse(edited("monitor: {interval_ms: 1000, timeout_ms: 500}\n    start_timeout_ms: 3000\n    "
                   "stop_timeout_ms: 4000\n  - name: c",
                   "monitor: {interval_ms: 200, timeout_ms: 150}\n    start_timeout_ms: 3000\n    "
                   "stop_timeout_ms: 4000\n  - name: c"));
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_FALSE(h.status("s").outdated);
  h.advance(200);  // the new interval counts from the change
  EXPECT_EQ(h.step_ops(), Ops{"monitor s 150"});
}

TEST(NodeAgentChangeTest, ReloadableParametersAreReloaded) {
  const std::string yaml =
      "resources:\n"
      "  - {name: d, agent: 'ocf:x:d', params: {state: a, fake: '1'}, "
      "monitor: {interval_ms: 1000, timeout_ms: 500}}\n";
  const auto with = [](const std::string& text) {
    auto c = *parse(text);
    c.resources[0].agent.reload = ReloadTraits{"reload", {"fake"}};
    return std::make_shared<const ResourceConfig>(c);
  };
  Harness h(yaml);
  h.view.config = with(yaml);
  h.place("d", {"n1"});
  h.probe({{"d", OpOutcome::kNotRunning}});
  EXPECT_EQ(h.step_ops(), Ops{});  // a singleton: its claim first
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"start d 20000"});
  h.answer("d", OpOutcome::kOk);
  h.view.config = with(
      "resources:\n"
      "  - {name: d, agent: 'ocf:x:d', params: {state: a, fake: '2'}, "
      "monitor: {interval_ms: 1000, timeout_ms: 500}}\n");
  EXPECT_EQ(h.step_ops(), Ops{"reload d 20000"});
  EXPECT_EQ(last(h).spec.agent.params.at("fake"), "2");
  h.answer("d", OpOutcome::kOk);
  EXPECT_FALSE(h.status("d").outdated);
  EXPECT_EQ(h.state("d"), InstanceState::kStarted);
  // A parameter that is not reloadable: a restart.
  h.view.config = with(
      "resources:\n"
      "  - {name: d, agent: 'ocf:x:d', params: {state: b, fake: '2'}, "
      "monitor: {interval_ms: 1000, timeout_ms: 500}}\n");
  EXPECT_EQ(h.step_ops(), Ops{"stop d 20000"});
  EXPECT_EQ(last(h).spec.agent.params.at("state"), "a");  // stopped with its own parameters
}

TEST(NodeAgentChangeTest, AnAdoptedInstanceRunsWhatTheRunnerRecorded) {
  Harness h;
  h.place("s", {"n1"});
  RunningDefinition old;
  old.spec = h.view.config->find("s") ? *h.view.config->find("s") : ResourceSpec{};
  old.spec.agent.command = {"/bin/s", "--old"};
  h.runner.records["s"] = old;
  h.probe_all_stopped_except({{"s", OpOutcome::kOk}});
  EXPECT_EQ(last(h).spec.agent.command,
            (std::vector<std::string>{"/bin/s", "--old"}));  // probed so
  EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});
  EXPECT_TRUE(h.status("s").outdated);
  EXPECT_EQ(last(h).spec.agent.command, (std::vector<std::string>{"/bin/s", "--old"}));
}

// n1 and its peers n2, n3 run c; the file changes c's command.
struct CloneWorld {
  Harness h;
  std::string old_definition;
  std::string new_definition;

  CloneWorld() {
    h.view.nodes = {"n1", "n2", "n3"};
    h.place("c", {"n1", "n2", "n3"});
    h.probe_all_stopped_except({{"c", OpOutcome::kOk}});
    old_definition = h.status("c").definition;
    for (const char* n : {"n2", "n3"}) peer(n, InstanceState::kStarted, old_definition);
    h.view.config = parse(edited("[/bin/c]", "[/bin/c, --new]"));
    new_definition = run_fingerprint(*h.view.config->find("c"));
  }
  void peer(const std::string& node, InstanceState state, const std::string& definition) {
    InstanceStatus st;
    st.state = state;
    st.definition = definition;
    h.statuses[node].resources["c"] = st;
  }
};

TEST(NodeAgentChangeTest, ACloneRestartsOneInstanceAtATimeInNodeOrder) {
  // n1 goes first: every other instance serves and comes later.
  CloneWorld first;
  EXPECT_EQ(first.h.step_ops(), Ops{"stop c 4000"});

  // Whether the others are outdated is read from what they run, not from
  // what they say: an instance that does not serve (n2 restarting) holds
  // n1 back even though n1 comes first in turn.
  CloneWorld w;
  w.peer("n2", InstanceState::kStopping, w.old_definition);
  EXPECT_EQ(w.h.step_ops(), Ops{});
  EXPECT_TRUE(w.h.status("c").outdated);
  w.peer("n2", InstanceState::kStarted, w.new_definition);
  EXPECT_EQ(w.h.step_ops(), Ops{"stop c 4000"});
}

TEST(NodeAgentChangeTest, AnInstanceLaterInTurnWaitsForTheEarlierOnes) {
  // The agent is n1, first by name; promoted, it goes last.
  const std::string yaml =
      "resources:\n"
      "  - {name: p, agent: 'ocf:x:p', promotable: {promoted: 1}, "
      "monitor: {interval_ms: 1000, timeout_ms: 500}}\n";
  Harness h(yaml);
  h.view.nodes = {"n1", "n2", "n3"};
  h.place("p", {"n1", "n2", "n3"}, {"n1"});
  h.probe({{"p", OpOutcome::kRunningPromoted}});
  const std::string old_definition = h.status("p").definition;
  for (const char* n : {"n2", "n3"}) {
    InstanceStatus st;
    st.state = InstanceState::kStarted;
    st.definition = old_definition;
    h.statuses[n].resources["p"] = st;
  }
  h.view.config = parse(
      "resources:\n"
      "  - {name: p, agent: 'ocf:x:p', params: {v: '2'}, promotable: {promoted: 1}, "
      "monitor: {interval_ms: 1000, timeout_ms: 500}}\n");
  const std::string new_definition = run_fingerprint(*h.view.config->find("p"));
  EXPECT_EQ(h.step_ops(), Ops{});  // the promoted instance goes last
  h.statuses["n2"].resources["p"].definition = new_definition;
  EXPECT_EQ(h.step_ops(), Ops{});  // n3 still runs the old one
  h.statuses["n3"].resources["p"].definition = new_definition;
  EXPECT_EQ(h.step_ops(), Ops{"demote p 20000"});  // demoted, then stopped, with the old one
}

TEST(NodeAgentChangeTest, ResourceRestartRestartsEachInstanceOnce) {
  Harness h;
  h.run_singleton();
  h.view.directives.restarts["s"] = 1;
  EXPECT_TRUE((h.step(), h.status("s").outdated));
  EXPECT_EQ(h.ops(), Ops{"stop s 4000"});
  h.answer("s", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
  EXPECT_EQ(last(h).restart_generation, 1);
  h.answer("s", OpOutcome::kOk);
  EXPECT_EQ(h.status("s").restart_generation, 1);
  h.advance(500);
  EXPECT_EQ(h.step_ops(), Ops{});
}

TEST(NodeAgentChangeTest, MaintenanceLeavesEverythingRunningAtShutdown) {
  for (const int how : {0, 1, 2}) {
    SCOPED_TRACE(how == 0 ? "cluster maintenance" : how == 1 ? "node maintenance" : "unmanaged");
    Harness h;
    h.run_singleton();
    if (how == 0) h.view.directives.maintenance = true;
    if (how == 1) h.view.node_mode = NodeMode::kMaintenance;
    if (how == 2) h.view.directives.unmanaged = {"s", "c", "db"};
    h.step();
    EXPECT_TRUE(h.status("s").unmanaged);
    EXPECT_FALSE(h.agent.exclusive_active());  // the operator's now: the watchdog is fed
    h.agent.begin_shutdown();
    EXPECT_EQ(h.step_ops(), Ops{});
    EXPECT_TRUE(h.agent.idle());
    EXPECT_EQ(h.state("s"), InstanceState::kStarted);
  }
}

TEST(NodeAgentChangeTest, AnUnmanagedResourceIsLeftAloneAndTheOthersAreNot) {
  Harness h;
  h.run_singleton();
  h.place("c", {"n1"});
  h.view.directives.unmanaged = {"s"};
  h.exited("s");
  EXPECT_EQ(h.step_ops(), Ops{"start c 3000"});  // c is managed
  h.answer("c", OpOutcome::kOk);
  h.advance(5000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor c 500"});  // s: no restart, no monitor
  h.view.directives.unmanaged.clear();
  EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});  // managed again: its exit counts
  EXPECT_EQ(h.status("s").fail_count, 1);
}

TEST(NodeAgentChangeTest, CleanupForceClearsABlockedStop) {
  Harness h;
  h.run_singleton();
  h.place("s", {});
  EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});
  h.answer("s", OpOutcome::kFailed, "exit 1");
  EXPECT_EQ(h.state("s"), InstanceState::kBlocked);
  // A force given before this instance blocked does not count.
  EXPECT_EQ(h.step_ops(), Ops{});
  h.view.directives.forced_cleanups["s"] = 1;
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.state("s"), InstanceState::kStopped);
  EXPECT_TRUE(h.agent.idle());
}

TEST(NodeAgentChangeTest, AForceFromBeforeTheResourceWasKnownIsHistory) {
  Harness h;
  h.view.directives.forced_cleanups["s"] = 3;
  h.run_singleton();
  h.place("s", {});
  EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});
  h.answer("s", OpOutcome::kFailed, "exit 1");
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.state("s"), InstanceState::kBlocked);
}

TEST(NodeAgentChangeTest, AFailedProxySourceIsStoppedWithoutADrain) {
  const std::string yaml =
      "resources:\n"
      "  - {name: web, agent: exec, command: [/bin/web], clone: {}, "
      "monitor: {interval_ms: 1000, timeout_ms: 500}}\n"
      "  - name: lb\n"
      "    agent: proxy\n"
      "    clone: {}\n"
      "    proxy:\n"
      "      frontends: []\n"
      "      backends: [{name: web, servers_from: {resource: web, port: 80}}]\n";
  // Both run on n1, probed.
  const auto running = [&](Harness& h) {
    h.place("web", {"n1"});
    h.place("lb", {"n1"});
    h.probe({{"web", OpOutcome::kOk}, {"lb", OpOutcome::kOk}});
  };
  Harness h(yaml);
  running(h);
  // A planned stop is announced (every proxy drains it first) ...
  h.place("web", {});
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.status("web").notify.pending, "stop");
  // ... a dead one is not: it stops (and restarts) at once.
  Harness d(yaml);
  running(d);
  d.exited("web");
  EXPECT_EQ(d.step_ops(), Ops{"stop web 20000"});
  d.answer("web", OpOutcome::kOk);
  EXPECT_EQ(d.step_ops(), Ops{"start web 20000"});
}

// Found by the simulation: a managed group member must stop when the lease
// goes, even while the member after it is left alone (it never stops, and
// an exclusive stop must not wait past the lease for it).
TEST(NodeAgentChangeTest, ALeftAloneSuccessorDoesNotHoldUpAStopAtTheLeasesEnd) {
  const std::string yaml =
      "resources:\n"
      "  - {name: a, agent: exec, command: [/bin/a], monitor: {interval_ms: 1000, timeout_ms: "
      "500}, stop_timeout_ms: 4000}\n"
      "  - {name: b, agent: exec, command: [/bin/b], monitor: {interval_ms: 1000, timeout_ms: "
      "500}, stop_timeout_ms: 4000}\n"
      "groups:\n"
      "  - {name: front, resources: [a, b]}\n";
  Harness h(yaml);
  h.place("a", {"n1"});
  h.place("b", {"n1"});
  h.probe({{"a", OpOutcome::kOk}, {"b", OpOutcome::kOk}});
  h.view.directives.unmanaged = {"b"};
  h.set_lease(false, 0);
  const Ops ops = h.step_ops();
  ASSERT_EQ(ops.size(), 1U);
  EXPECT_EQ(ops[0].rfind("stop a ", 0), 0U) << ops[0];
  EXPECT_EQ(h.state("b"), InstanceState::kStarted);  // left alone
}

}  // namespace
}  // namespace bulwark
