// Tests of the node agent's state machine: a fake clock, a fake runner that
// records every operation the agent begins, and the test answering them
// (node_agent_harness.h). Each test checks the exact operations (kind,
// resource, timeout) in the exact order, and the exact state the agent
// publishes.
#include "agent/node_agent.h"

#include <gtest/gtest.h>

#include "agent/node_agent_harness.h"

namespace bulwark {
namespace {

using agent_test::Harness;
using agent_test::kResources;
using agent_test::Ops;
using agent_test::parse;
using agent_test::state_name;

// --- probes ---

TEST(NodeAgentTest, ProbesEveryResourceBeforeAnythingElse) {
  Harness h;
  h.place("s", {"n1"});
  h.place("c", {"n1"});
  // Placed here, yet nothing starts before every probe answered.
  EXPECT_EQ(h.step_ops(), (Ops{"probe c 500", "probe db 500", "probe s 500"}));
  EXPECT_FALSE(h.agent.probed());
  EXPECT_FALSE(h.agent.status().probed);
  EXPECT_TRUE(h.agent.status().resources.empty());  // nothing known, nothing claimed
  EXPECT_EQ(h.step_ops(), Ops{});                   // no second probe while one is in flight
  h.answer("c", OpOutcome::kNotRunning);
  h.answer("db", OpOutcome::kNotRunning);
  EXPECT_EQ(h.step_ops(), Ops{"start c 3000"});  // c may start; s awaits its own probe
  EXPECT_FALSE(h.agent.probed());
  h.answer("s", OpOutcome::kNotRunning);
  EXPECT_EQ(h.step_ops(), Ops{});  // the singleton waits for its claim
  EXPECT_EQ(h.agent.wants_claim(), h.revision());
  // Published as starting (never understated), marked as only a claim.
  EXPECT_EQ(h.state("s"), InstanceState::kStarting);
  EXPECT_TRUE(h.status("s").claim_pending);
  h.agent.on_claimed(h.revision());
  EXPECT_FALSE(h.status("s").claim_pending);
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
  EXPECT_TRUE(h.agent.probed());
  EXPECT_TRUE(h.agent.status().probed);
}

// The record a claim writes is the claim: once it commits the node starts
// what it announces, whatever placement comes after, so the coordinator
// must count it as starting, not as a claim that may yet fail (simulation
// seed 2450: a pending claim under a placement since replaced was ignored,
// and the singleton started on a second node).
TEST(NodeAgentTest, TheRecordAClaimWritesIsNoPendingClaim) {
  Harness h;
  h.place("s", {"n1"});
  h.step_ops();
  h.answer("c", OpOutcome::kNotRunning);
  h.answer("db", OpOutcome::kNotRunning);
  h.answer("s", OpOutcome::kNotRunning);
  h.step_ops();
  ASSERT_EQ(h.agent.wants_claim(), h.revision());
  EXPECT_TRUE(h.status("s").claim_pending);  // published while it waits: only a claim
  const NodeStatusRecord claim = h.agent.begin_claim();
  ASSERT_TRUE(claim.resources.count("s"));
  EXPECT_EQ(claim.resources.at("s").state, InstanceState::kStarting);
  EXPECT_FALSE(claim.resources.at("s").claim_pending);
  // The claim failed (or its outcome is unknown): pending again.
  h.agent.on_claim_failed();
  EXPECT_TRUE(h.status("s").claim_pending);
}

TEST(NodeAgentTest, ProbeOutcomeDecidesTheInitialState) {
  struct Case {
    const char* resource;
    OpOutcome outcome;
    InstanceState state;  // right after the answer
    Ops next;             // the step after it
  };
  const Case cases[] = {
      // Adopted as running: no start, its first monitor an interval later.
      {"c", OpOutcome::kOk, InstanceState::kStarted, {}},
      {"c", OpOutcome::kNotRunning, InstanceState::kStopped, {"start c 3000"}},
      {"db", OpOutcome::kRunningPromoted, InstanceState::kPromoted, {}},
      // An unknown state is stopped to know it; it is not counted as a failure.
      {"c", OpOutcome::kFailed, InstanceState::kFailed, {"stop c 4000"}},
      {"c", OpOutcome::kTimeout, InstanceState::kFailed, {"stop c 4000"}},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(std::string(k.resource) + " probe " + op_outcome_name(k.outcome));
    Harness h;
    if (std::string(k.resource) == "c") {
      h.place("c", {"n1"});
    } else {
      h.place("db", {"n1"}, {"n1"});
    }
    h.probe_all_stopped_except({{k.resource, k.outcome}});
    EXPECT_EQ(state_name(h.state(k.resource)), state_name(k.state));
    EXPECT_EQ(h.status(k.resource).fail_count, 0);
    EXPECT_EQ(h.step_ops(), k.next);
    if (k.state == InstanceState::kStarted || k.state == InstanceState::kPromoted) {
      h.advance(999);
      EXPECT_EQ(h.step_ops(), Ops{});
      h.advance(1);
      EXPECT_EQ(h.step_ops(), Ops{"monitor " + std::string(k.resource) + " 500"});
    }
  }
}

TEST(NodeAgentTest, WithoutAPlacementRecordWhatRunsIsLeftAlone) {
  Harness h;  // no placement was ever committed
  h.probe_all_stopped_except({{"s", OpOutcome::kOk}});
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.state("s"), InstanceState::kStarted);
  EXPECT_EQ(h.state("c"), InstanceState::kStopped);
  EXPECT_EQ(h.agent.wants_claim(), std::nullopt);
  h.advance(1000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor s 500"});  // still monitored
}

TEST(NodeAgentTest, NothingBeforeTheStoreIsLoaded) {
  Harness h;
  h.view.store_loaded = false;
  EXPECT_EQ(h.step_ops(), Ops{});
  h.view.store_loaded = true;
  EXPECT_EQ(h.step_ops(), (Ops{"probe c 500", "probe db 500", "probe s 500"}));
}

// --- where and when to start ---

TEST(NodeAgentTest, StartsOnlyWherePlaced) {
  Harness h;
  h.place("c", {"n2", "n3"});
  h.probe_all_stopped_except();
  EXPECT_EQ(h.step_ops(), Ops{});
  h.place("c", {"n1", "n2", "n3"});
  EXPECT_EQ(h.step_ops(), Ops{"start c 3000"});
  EXPECT_EQ(h.state("c"), InstanceState::kStarting);
  h.answer("c", OpOutcome::kOk);
  EXPECT_EQ(h.state("c"), InstanceState::kStarted);
  h.place("c", {"n2", "n3"});
  EXPECT_EQ(h.step_ops(), Ops{"stop c 4000"});
  EXPECT_EQ(h.state("c"), InstanceState::kStopping);
  h.answer("c", OpOutcome::kOk);
  EXPECT_EQ(h.state("c"), InstanceState::kStopped);
}

TEST(NodeAgentTest, ASingletonStartNeedsTheLeaseBeyondTheGuardAndAClaim) {
  struct Case {
    bool holds;
    int64_t remaining_ms;
    bool may_start;
  };
  const Case cases[] = {
      {false, 0, false},   // no lease
      {true, 50, false},   // within the guard
      {true, 100, false},  // exactly the guard is not more than the guard
      {true, 101, true},   // just beyond it
      {true, 300, true},   // a fresh lease
  };
  for (const Case& k : cases) {
    SCOPED_TRACE("lease " + std::to_string(k.holds) + " " + std::to_string(k.remaining_ms));
    Harness h;
    h.place("s", {"n1"});
    h.set_lease(k.holds, k.remaining_ms);
    h.probe_all_stopped_except();
    EXPECT_EQ(h.step_ops(), Ops{});  // never without a claim
    if (!k.may_start) {
      EXPECT_EQ(h.agent.wants_claim(), std::nullopt);
      EXPECT_EQ(state_name(h.state("s")), state_name(InstanceState::kStopped));
      h.agent.on_claimed(h.revision());  // a claim alone does not do it either
      EXPECT_EQ(h.step_ops(), Ops{});
      continue;
    }
    ASSERT_EQ(h.agent.wants_claim(), h.revision());
    // The claim publishes it as starting: never less than what may run.
    EXPECT_EQ(state_name(h.state("s")), state_name(InstanceState::kStarting));
    EXPECT_EQ(h.step_ops(), Ops{});  // still waiting
    h.agent.on_claimed(h.revision());
    EXPECT_EQ(h.agent.wants_claim(), std::nullopt);
    EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
    EXPECT_EQ(state_name(h.state("s")), state_name(InstanceState::kStarting));
  }
}

TEST(NodeAgentTest, AClaimCountsOnlyForTheRevisionItWasMadeOn) {
  Harness h;
  h.place("s", {"n1"});
  h.probe_all_stopped_except();
  h.step();
  const int64_t first = h.revision();
  EXPECT_EQ(h.agent.wants_claim(), first);
  h.agent.on_claimed(first - 1);  // an older revision
  EXPECT_EQ(h.agent.wants_claim(), first);
  EXPECT_EQ(h.step_ops(), Ops{});
  h.place("c", {"n2"});  // the placement moved on before the claim
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.agent.wants_claim(), h.revision());
  h.agent.on_claimed(first);  // late answer for the superseded revision
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.agent.wants_claim(), h.revision());
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
}

TEST(NodeAgentTest, ClonesNeedNoClaimAndNoLease) {
  Harness h;
  h.place("c", {"n1"});
  h.set_lease(false, 0);
  h.probe_all_stopped_except();
  EXPECT_EQ(h.step_ops(), Ops{"start c 3000"});
  EXPECT_EQ(h.agent.wants_claim(), std::nullopt);
}

// --- the lease ---

TEST(NodeAgentTest, LeaseLossStopsSingletonsWithinTheLeaseAndKeepsClones) {
  struct Case {
    bool holds;
    int64_t remaining_ms;
    Ops ops;
  };
  const Case cases[] = {
      {true, 100, {"stop s 100"}},  // at the guard: stop, cut at the lease's end
      {true, 60, {"stop s 60"}},
      {false, 0, {"stop s 1"}},  // already gone: kill at once
  };
  for (const Case& k : cases) {
    SCOPED_TRACE("lease " + std::to_string(k.holds) + " " + std::to_string(k.remaining_ms));
    Harness h;
    h.run_singleton();
    h.place("c", {"n1"});
    EXPECT_EQ(h.step_ops(), Ops{"start c 3000"});
    h.answer("c", OpOutcome::kOk);
    h.set_lease(k.holds, k.remaining_ms);
    EXPECT_EQ(h.step_ops(), k.ops);
    EXPECT_EQ(state_name(h.state("s")), state_name(InstanceState::kStopping));
    EXPECT_EQ(state_name(h.state("c")), state_name(InstanceState::kStarted));
    h.answer("s", OpOutcome::kOk);
    EXPECT_EQ(h.step_ops(), Ops{});  // s stays stopped while placed here
    h.advance(1000);
    EXPECT_EQ(h.step_ops(), Ops{"monitor c 500"});  // the clone is still looked after
  }
}

TEST(NodeAgentTest, LeaseLossVoidsTheClaim) {
  Harness h;
  h.run_singleton();
  h.set_lease(false, 0);
  EXPECT_EQ(h.step_ops(), Ops{"stop s 1"});
  h.answer("s", OpOutcome::kOk);
  h.set_lease(true, 300);  // back, under the same placement revision
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.agent.wants_claim(), h.revision());  // it must claim again
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
}

TEST(NodeAgentTest, AClaimWhileTheLeaseIsShortStartsNothing) {
  Harness h;
  h.place("s", {"n1"});
  h.probe_all_stopped_except();
  h.step();
  ASSERT_EQ(h.agent.wants_claim(), h.revision());
  h.set_lease(true, 90);
  h.step();  // the lease ran short before the claim committed
  EXPECT_EQ(h.agent.wants_claim(), std::nullopt);
  EXPECT_EQ(h.state("s"), InstanceState::kStopped);  // no longer published as starting
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{});
}

// Invariant 1: a singleton whose start is in flight when the lease runs out
// must still be gone by the lease's end. The agent runs one operation per
// instance and looks at an instance only once its operation answered, so a
// start (up to start_timeout_ms, 3000 here; an exec start with a tcp/http
// check keeps the process running while its check is retried) outlives the
// lease, and the stop only begins after it: the majority may have placed s
// elsewhere by then.
TEST(NodeAgentTest, AStartInFlightWhenTheLeaseRunsOutIsEndedWithinTheLease) {
  Harness h;
  h.place("s", {"n1"});
  h.probe_all_stopped_except();
  h.step();
  h.agent.on_claimed(h.revision());
  ASSERT_EQ(h.step_ops(), Ops{"start s 3000"});
  h.set_lease(true, 60);
  // A stop that supersedes the start, cut at the lease's end.
  EXPECT_EQ(h.step_ops(), Ops{"stop s 60"});
}

// --- monitors and failures ---

TEST(NodeAgentTest, MonitorsRunOnTheirInterval) {
  Harness h;
  h.run_singleton();  // started at t=1000
  EXPECT_EQ(h.agent.next_due_ms(), h.now());
  h.step();
  EXPECT_EQ(h.agent.next_due_ms(), 2000);
  h.at(1999);
  EXPECT_EQ(h.step_ops(), Ops{});
  h.at(2000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor s 500"});
  EXPECT_EQ(h.step_ops(), Ops{});  // one at a time
  h.at(2100);
  h.answer("s", OpOutcome::kOk);
  h.at(3099);
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.agent.next_due_ms(), 3100);
  h.at(3100);
  EXPECT_EQ(h.step_ops(), Ops{"monitor s 500"});
  EXPECT_EQ(h.status("s").fail_count, 0);
}

TEST(NodeAgentTest, AFailedMonitorStopsAndRestartsInPlace) {
  for (OpOutcome outcome : {OpOutcome::kFailed, OpOutcome::kNotRunning, OpOutcome::kTimeout,
                            OpOutcome::kRunningPromoted}) {
    SCOPED_TRACE(op_outcome_name(outcome));
    Harness h;
    h.run_singleton();
    h.advance(1000);
    ASSERT_EQ(h.step_ops(), Ops{"monitor s 500"});
    h.answer("s", outcome, "exit 1");
    InstanceStatus st = h.status("s");
    EXPECT_EQ(state_name(st.state), state_name(InstanceState::kFailed));
    EXPECT_EQ(st.fail_count, 1);
    EXPECT_EQ(st.last_failure, std::string("monitor: ") + op_outcome_name(outcome) + " (exit 1)");
    EXPECT_EQ(st.last_failure_wall_ms, h.clock.wall_ms());
    EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});
    h.answer("s", OpOutcome::kOk);
    // Same placement revision, lease held: the claim still stands.
    EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
    h.answer("s", OpOutcome::kOk);
    EXPECT_EQ(state_name(h.state("s")), state_name(InstanceState::kStarted));
    EXPECT_EQ(h.status("s").fail_count, 1);  // kept: the coordinator moves it at the threshold
  }
}

TEST(NodeAgentTest, AtTheMigrationThresholdItIsNotRestarted) {
  Harness h(
      "resources: [{name: s, agent: exec, command: [/bin/s], migration_threshold: 2,\n"
      "             monitor: {interval_ms: 1000, timeout_ms: 500},\n"
      "             start_timeout_ms: 3000, stop_timeout_ms: 4000}]\n");
  h.place("s", {"n1"});
  h.probe({{"s", OpOutcome::kNotRunning}});
  h.step();
  h.agent.on_claimed(h.revision());
  Ops all;
  const auto record = [&] {
    for (auto& o : h.step_ops()) all.push_back(o);
  };
  record();
  h.answer("s", OpOutcome::kOk);
  for (int failure = 1; failure <= 2; ++failure) {
    h.advance(1000);
    record();
    h.answer("s", OpOutcome::kFailed);
    record();
    h.answer("s", OpOutcome::kOk);
    record();
    if (failure == 1) h.answer("s", OpOutcome::kOk);
  }
  h.advance(60000);
  record();
  EXPECT_EQ(all, (Ops{"start s 3000", "monitor s 500", "stop s 4000", "start s 3000",
                      "monitor s 500", "stop s 4000"}));
  // Stopped, but still covered by the claim on this placement: published as
  // starting (it could restart with no new claim) until the placement moves.
  EXPECT_EQ(h.state("s"), InstanceState::kStarting);
  EXPECT_EQ(h.status("s").fail_count, 2);
  h.place("s", {"n2"});  // the coordinator moves it away at the threshold
  h.step();
  EXPECT_EQ(h.state("s"), InstanceState::kStopped);
}

TEST(NodeAgentTest, FailureTimeoutForgetsFailures) {
  Harness h(
      "resources: [{name: s, agent: exec, command: [/bin/s], migration_threshold: 1,\n"
      "             failure_timeout_ms: 5000, monitor: {interval_ms: 1000, timeout_ms: 500},\n"
      "             start_timeout_ms: 3000, stop_timeout_ms: 4000}]\n");
  h.place("s", {"n1"});
  h.probe({{"s", OpOutcome::kNotRunning}});
  h.step();
  h.agent.on_claimed(h.revision());
  ASSERT_EQ(h.step_ops(), Ops{"start s 3000"});
  h.answer("s", OpOutcome::kOk);
  h.at(2000);
  ASSERT_EQ(h.step_ops(), Ops{"monitor s 500"});
  h.at(2010);
  h.answer("s", OpOutcome::kFailed);  // the failure at t=2010
  EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});
  h.answer("s", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{});          // at the threshold
  EXPECT_EQ(h.agent.next_due_ms(), 3010);  // idle step (now + 1000) comes first
  h.at(7009);
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.status("s").fail_count, 1);
  EXPECT_EQ(h.agent.next_due_ms(), 7010);  // the failure ages out then
  h.at(7010);
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
  EXPECT_EQ(h.status("s").fail_count, 0);
}

TEST(NodeAgentTest, AStopFailureBlocksAndCleanupRetriesIt) {
  Harness h;
  h.run_singleton();
  h.advance(1000);
  ASSERT_EQ(h.step_ops(), Ops{"monitor s 500"});
  h.answer("s", OpOutcome::kFailed);
  ASSERT_EQ(h.step_ops(), Ops{"stop s 4000"});
  h.answer("s", OpOutcome::kTimeout, "killed after 4000 ms");
  InstanceStatus st = h.status("s");
  EXPECT_EQ(state_name(st.state), state_name(InstanceState::kBlocked));
  EXPECT_EQ(st.last_failure, "stop: timed out (killed after 4000 ms)");
  EXPECT_EQ(st.fail_count, 1);
  // Blocked: it may still run; nothing more is tried, by any step.
  for (int i = 0; i < 5; ++i) {
    h.advance(1000);
    EXPECT_EQ(h.step_ops(), Ops{});
  }
  EXPECT_TRUE(h.agent.idle());
  // The operator's cleanup: fail count reset, the stop tried again.
  h.view.directives.cleanups["s"] = 7;
  EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});
  st = h.status("s");
  EXPECT_EQ(st.fail_count, 0);
  EXPECT_EQ(st.cleanup_generation, 7);
  EXPECT_EQ(st.last_failure, "");
  EXPECT_EQ(st.last_failure_wall_ms, 0);
  h.answer("s", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
  h.answer("s", OpOutcome::kOk);
  // The same generation again is not a new cleanup.
  h.advance(1000);
  ASSERT_EQ(h.step_ops(), Ops{"monitor s 500"});
  h.answer("s", OpOutcome::kFailed);
  h.step();
  EXPECT_EQ(h.status("s").fail_count, 1);
}

TEST(NodeAgentTest, CleanupRestartsAResourceHeldBackByTheThreshold) {
  Harness h(
      "resources: [{name: s, agent: exec, command: [/bin/s], migration_threshold: 1,\n"
      "             monitor: {interval_ms: 1000, timeout_ms: 500},\n"
      "             start_timeout_ms: 3000, stop_timeout_ms: 4000}]\n");
  h.place("s", {"n1"});
  h.probe({{"s", OpOutcome::kNotRunning}});
  h.step();
  h.agent.on_claimed(h.revision());
  ASSERT_EQ(h.step_ops(), Ops{"start s 3000"});
  h.answer("s", OpOutcome::kFailed);
  ASSERT_EQ(h.step_ops(), Ops{"stop s 4000"});
  h.answer("s", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.status("s").last_failure, "start: failed");
  h.view.directives.cleanups["s"] = 1;
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
}

TEST(NodeAgentTest, AnUnsolicitedExitIsAFailureAndRestarts) {
  Harness h;
  h.run_singleton();
  h.advance(10);
  h.exited("s");
  EXPECT_EQ(h.agent.next_due_ms(), h.now());  // acted on at the next step
  EXPECT_EQ(h.step_ops(), Ops{"stop s 4000"});
  InstanceStatus st = h.status("s");
  EXPECT_EQ(st.fail_count, 1);
  EXPECT_EQ(st.last_failure, "the process exited");
  h.answer("s", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
  h.answer("s", OpOutcome::kOk);
  EXPECT_EQ(h.state("s"), InstanceState::kStarted);
  EXPECT_EQ(h.step_ops(), Ops{});
}

TEST(NodeAgentTest, AnExitReportForAStoppedInstanceIsIgnored) {
  Harness h;
  h.probe_all_stopped_except();
  h.exited("s");
  h.exited("nonexistent");
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.status("s").fail_count, 0);
  EXPECT_EQ(h.state("s"), InstanceState::kStopped);
}

TEST(NodeAgentTest, AnAnswerToASupersededOperationIsIgnored) {
  Harness h;
  h.run_singleton();
  const uint64_t start_id = h.runner.begun.back().id;
  h.agent.on_completion(OpCompletion{.id = start_id,
                                     .resource = "s",
                                     .kind = OpKind::kStart,
                                     .outcome = OpOutcome::kFailed,
                                     .detail = "late duplicate"});
  EXPECT_EQ(h.state("s"), InstanceState::kStarted);
  EXPECT_EQ(h.status("s").fail_count, 0);
}

// --- order and groups ---

constexpr const char* kOrdered =
    "resources:\n"
    "  - {name: a, agent: exec, command: [/bin/a], clone: {}, start_timeout_ms: 3000,\n"
    "     stop_timeout_ms: 4000, monitor: {interval_ms: 1000, timeout_ms: 500}}\n"
    "  - {name: b, agent: exec, command: [/bin/b], clone: {}, start_timeout_ms: 3000,\n"
    "     stop_timeout_ms: 4000, monitor: {interval_ms: 1000, timeout_ms: 500}}\n"
    "constraints: [{order: [a, b]}]\n";

TEST(NodeAgentTest, OrderStartsASuccessorOnceItsPredecessorRuns) {
  Harness h(kOrdered);
  h.place("a", {"n1"});
  h.place("b", {"n1"});
  h.probe({{"a", OpOutcome::kNotRunning}, {"b", OpOutcome::kNotRunning}});
  EXPECT_EQ(h.step_ops(), Ops{"start a 3000"});
  EXPECT_EQ(h.step_ops(), Ops{});  // a is only starting
  h.answer("a", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"start b 3000"});
}

TEST(NodeAgentTest, OrderCountsAPredecessorStartedOnAnotherNode) {
  Harness h(kOrdered);
  h.place("a", {"n2"});
  h.place("b", {"n1"});
  h.probe({{"a", OpOutcome::kNotRunning}, {"b", OpOutcome::kNotRunning}});
  for (InstanceState other : {InstanceState::kStopped, InstanceState::kStarting,
                              InstanceState::kFailed, InstanceState::kStopping}) {
    h.statuses["n2"].resources["a"].state = other;
    EXPECT_EQ(h.step_ops(), Ops{}) << state_name(other);
  }
  h.statuses["n2"].resources["a"].state = InstanceState::kStarted;
  EXPECT_EQ(h.step_ops(), Ops{"start b 3000"});
}

TEST(NodeAgentTest, OrderStopsInReverse) {
  Harness h(kOrdered);
  h.place("a", {"n1"});
  h.place("b", {"n1"});
  h.probe({{"a", OpOutcome::kOk}, {"b", OpOutcome::kOk}});  // both adopted
  h.place("a", {});
  h.place("b", {});
  EXPECT_EQ(h.step_ops(), Ops{"stop b 4000"});
  EXPECT_EQ(h.step_ops(), Ops{});  // a waits for b's stop
  h.answer("b", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"stop a 4000"});
}

TEST(NodeAgentTest, APredecessorStopsAtOnceWhenItsSuccessorStaysPlaced) {
  Harness h(kOrdered);
  h.place("a", {"n1"});
  h.place("b", {"n1"});
  h.probe({{"a", OpOutcome::kOk}, {"b", OpOutcome::kOk}});
  h.place("a", {"n2"});  // only a leaves this node
  EXPECT_EQ(h.step_ops(), Ops{"stop a 4000"});
}

constexpr const char* kGroup =
    "resources:\n"
    "  - {name: a, agent: exec, command: [/bin/a], start_timeout_ms: 3000,\n"
    "     stop_timeout_ms: 4000, monitor: {interval_ms: 1000, timeout_ms: 500}}\n"
    "  - {name: b, agent: exec, command: [/bin/b], start_timeout_ms: 3000,\n"
    "     stop_timeout_ms: 4000, monitor: {interval_ms: 1000, timeout_ms: 500}}\n"
    "  - {name: x, agent: exec, command: [/bin/x], start_timeout_ms: 3000,\n"
    "     stop_timeout_ms: 4000, monitor: {interval_ms: 1000, timeout_ms: 500}}\n"
    "groups: [{name: g, resources: [a, b]}]\n";

TEST(NodeAgentTest, GroupMembersStartInOrderOnThisNodeAndStopInReverse) {
  Harness h(kGroup);
  h.place("a", {"n1"});
  h.place("b", {"n1"});
  // Another node reporting a as started does not count: members share a node.
  h.statuses["n2"].resources["a"].state = InstanceState::kStarted;
  h.probe({{"a", OpOutcome::kNotRunning},
           {"b", OpOutcome::kNotRunning},
           {"x", OpOutcome::kNotRunning}});
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.agent.wants_claim(), h.revision());
  EXPECT_EQ(h.state("a"), InstanceState::kStarting);  // claimed for
  EXPECT_EQ(h.state("b"), InstanceState::kStopped);   // not yet: a must run first
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"start a 3000"});
  EXPECT_EQ(h.step_ops(), Ops{});
  h.answer("a", OpOutcome::kOk);
  // The claim covered a, the only start it announced; b needs its own.
  EXPECT_EQ(h.step_ops(), Ops{});
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"start b 3000"});
  h.answer("b", OpOutcome::kOk);
  h.place("a", {});
  h.place("b", {});
  EXPECT_EQ(h.step_ops(), Ops{"stop b 4000"});
  EXPECT_EQ(h.step_ops(), Ops{});
  h.answer("b", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"stop a 4000"});
}

// docs/configuration.md, constraints: "order ... A, B are resources or
// groups". An order that names a group must wait for (or hold back) the
// group's members; the agent compares the order's names with resource names
// only, so a resource ordered after a group never starts.
TEST(NodeAgentTest, OrderAfterAGroupWaitsForTheGroup) {
  Harness h(std::string(kGroup) + "constraints: [{order: [g, x]}]\n");
  h.place("a", {"n1"});
  h.place("b", {"n1"});
  h.place("x", {"n1"});
  h.probe({{"a", OpOutcome::kNotRunning},
           {"b", OpOutcome::kNotRunning},
           {"x", OpOutcome::kNotRunning}});
  h.step();
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"start a 3000"});
  h.answer("a", OpOutcome::kOk);
  const auto claim_then = [&](const Ops& ops) {
    EXPECT_EQ(h.step_ops(), Ops{});  // each start its own claim
    h.agent.on_claimed(h.revision());
    EXPECT_EQ(h.step_ops(), ops);
  };
  claim_then(Ops{"start b 3000"});
  h.answer("b", OpOutcome::kOk);
  claim_then(Ops{"start x 3000"});
}

// --- maintenance and shutdown ---

TEST(NodeAgentTest, MaintenanceRunsNothingButProbes) {
  for (const bool cluster_wide : {true, false}) {
    SCOPED_TRACE(cluster_wide ? "cluster maintenance" : "node maintenance");
    Harness h;
    if (cluster_wide) {
      h.view.directives.maintenance = true;
    } else {
      h.view.node_mode = NodeMode::kMaintenance;
    }
    h.place("c", {"n1"});       // would start
    h.place("db", {"n1"}, {});  // runs promoted: would demote
    h.agent.on_claimed(h.revision());
    EXPECT_EQ(h.step_ops(), (Ops{"probe c 500", "probe db 500", "probe s 500"}));
    h.answer("c", OpOutcome::kNotRunning);
    h.answer("db", OpOutcome::kRunningPromoted);
    h.answer("s", OpOutcome::kOk);  // not placed here: would stop
    h.set_lease(false, 0);          // would stop s even if placed
    h.exited("s");                  // would count as a failure
    for (int i = 0; i < 5; ++i) {
      h.advance(1000);
      EXPECT_EQ(h.step_ops(), Ops{});
    }
    EXPECT_TRUE(h.agent.probed());
    EXPECT_EQ(h.state("s"), InstanceState::kStarted);
    EXPECT_EQ(h.state("db"), InstanceState::kPromoted);
    EXPECT_EQ(h.state("c"), InstanceState::kStopped);
    // Out of maintenance, the agent manages again.
    h.view.directives.maintenance = false;
    h.view.node_mode = NodeMode::kOnline;
    h.set_lease(true, 300);
    EXPECT_EQ(h.step_ops(), (Ops{"start c 3000", "demote db 4000", "stop s 4000"}));
  }
}

// AgentService waits until next_due_ms(); in maintenance no monitor runs, so
// an overdue monitor must not make the next step due at once (the loop
// would spin without sleeping for as long as maintenance lasts).
TEST(NodeAgentTest, MaintenanceDoesNotKeepAStepDueAtOnce) {
  Harness h;
  h.view.directives.maintenance = true;
  h.probe_all_stopped_except({{"c", OpOutcome::kOk}});
  h.advance(5000);  // c's monitor is overdue
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_GT(h.agent.next_due_ms(), h.now());
}

TEST(NodeAgentTest, ShutdownStopsEverythingAndEndsIdle) {
  Harness h;
  h.place("s", {"n1"});
  h.place("c", {"n1"});
  h.place("db", {"n1"}, {"n1"});
  h.probe_all_stopped_except();
  // A replica's start needs no claim; the singleton's does.
  EXPECT_EQ(h.step_ops(), (Ops{"start c 3000", "start db 3000"}));
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"start s 3000"});
  h.answer("c", OpOutcome::kOk);
  h.answer("db", OpOutcome::kOk);
  h.answer("s", OpOutcome::kOk);
  // The claim covered s's start, not db's promotion: that needs its own.
  EXPECT_EQ(h.step_ops(), Ops{});
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"promote db 3000"});
  h.answer("db", OpOutcome::kOk);
  EXPECT_FALSE(h.agent.idle());
  h.agent.begin_shutdown();
  // Full stop timeouts: the lease is held, nothing is cut short.
  EXPECT_EQ(h.step_ops(), (Ops{"stop c 4000", "demote db 4000", "stop s 4000"}));
  EXPECT_EQ(h.agent.wants_claim(), std::nullopt);
  EXPECT_FALSE(h.agent.idle());
  h.answer("c", OpOutcome::kOk);
  h.answer("s", OpOutcome::kOk);
  h.answer("db", OpOutcome::kOk);
  EXPECT_FALSE(h.agent.idle());  // db still runs, demoted
  EXPECT_EQ(h.step_ops(), Ops{"stop db 4000"});
  h.answer("db", OpOutcome::kOk);
  EXPECT_TRUE(h.agent.idle());
  EXPECT_EQ(h.step_ops(), Ops{});  // nothing starts again
  for (const char* r : {"s", "c", "db"}) EXPECT_EQ(h.state(r), InstanceState::kStopped) << r;
}

TEST(NodeAgentTest, ARemovedResourceIsStoppedThenForgotten) {
  Harness h;
  h.place("c", {"n1"});
  h.probe_all_stopped_except({{"c", OpOutcome::kOk}});
  h.view.config = parse(
      "resources: [{name: s, agent: exec, command: [/bin/s],\n"
      "             monitor: {interval_ms: 1000, timeout_ms: 500}}]\n");
  EXPECT_EQ(h.step_ops(), Ops{"stop c 4000"});        // with the spec it was started with
  EXPECT_EQ(h.state("c"), InstanceState::kStopping);  // still listed until stopped
  EXPECT_FALSE(h.listed("db"));                       // already stopped: forgotten at once
  h.answer("c", OpOutcome::kOk);
  EXPECT_EQ(h.state("c"), InstanceState::kStopped);
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_FALSE(h.listed("c"));
  EXPECT_TRUE(h.listed("s"));
  EXPECT_TRUE(h.agent.probed());
}

TEST(NodeAgentTest, ANewResourceIsProbedBeforeItStarts) {
  Harness h("resources: [{name: s, agent: exec, command: [/bin/s]}]\n");
  h.probe({{"s", OpOutcome::kNotRunning}});
  h.step();  // probed() is decided by a step
  EXPECT_TRUE(h.agent.probed());
  h.view.config = parse(kResources);
  h.place("c", {"n1"});
  EXPECT_EQ(h.step_ops(), (Ops{"probe c 500", "probe db 500"}));
  EXPECT_FALSE(h.agent.probed());
  h.answer("c", OpOutcome::kNotRunning);
  h.answer("db", OpOutcome::kNotRunning);
  EXPECT_EQ(h.step_ops(), Ops{"start c 3000"});
  EXPECT_TRUE(h.agent.probed());
}

// --- promotable ---

TEST(NodeAgentTest, APromotionNeedsAClaimAndIsPublishedAsPromotedWhileItWaits) {
  Harness h;
  h.place("db", {"n1", "n2"}, {"n1"});
  h.probe_all_stopped_except();
  EXPECT_EQ(h.step_ops(), Ops{"start db 3000"});  // a replica start needs no claim
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{});
  ASSERT_EQ(h.agent.wants_claim(), h.revision());
  EXPECT_EQ(h.state("db"), InstanceState::kPromoted);  // never understated
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"promote db 3000"});
  EXPECT_EQ(h.state("db"), InstanceState::kPromoted);
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.state("db"), InstanceState::kPromoted);
  // A promoted monitor expects "running promoted".
  h.advance(1000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor db 500"});
  h.answer("db", OpOutcome::kRunningPromoted);
  EXPECT_EQ(h.state("db"), InstanceState::kPromoted);
  h.advance(1000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor db 500"});
  h.answer("db", OpOutcome::kOk);  // runs, but no longer promoted
  EXPECT_EQ(h.state("db"), InstanceState::kFailed);
  EXPECT_EQ(h.status("db").fail_count, 1);
  EXPECT_EQ(h.status("db").last_failure, "monitor: ok");
}

TEST(NodeAgentTest, ADemotionFollowsThePromotedList) {
  Harness h;
  h.place("db", {"n1", "n2"}, {"n1"});
  h.probe_all_stopped_except({{"db", OpOutcome::kRunningPromoted}});
  EXPECT_EQ(h.step_ops(), Ops{});  // adopted as promoted: no claim needed to keep it
  h.place("db", {"n1", "n2"}, {"n2"});
  EXPECT_EQ(h.step_ops(), Ops{"demote db 4000"});
  EXPECT_EQ(h.state("db"), InstanceState::kPromoted);  // until the demotion answered
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.state("db"), InstanceState::kStarted);
  // A replica's monitor expects plain "running".
  h.advance(1000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor db 500"});
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.state("db"), InstanceState::kStarted);
  h.advance(1000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor db 500"});
  h.answer("db", OpOutcome::kRunningPromoted);
  EXPECT_EQ(h.state("db"), InstanceState::kFailed);
}

// db is an OCF agent: its demote cannot be ended by force, so it is not cut
// at the lease's end (the coordinator waits for its timeouts instead, see
// PlacementStepTest); an exec singleton's stop is (above).
TEST(NodeAgentTest, LeaseLossDemotesAndKeepsTheReplica) {
  Harness h;
  h.place("db", {"n1"}, {"n1"});
  h.probe_all_stopped_except({{"db", OpOutcome::kRunningPromoted}});
  h.set_lease(true, 70);
  EXPECT_EQ(h.step_ops(), Ops{"demote db 4000"});
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{});  // the replica keeps running
  EXPECT_EQ(h.state("db"), InstanceState::kStarted);
  h.set_lease(true, 300);
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.agent.wants_claim(), h.revision());  // promoted again only after a claim
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"promote db 3000"});
}

// A promoted instance whose monitor fails (e.g. OCF 9, "failed while
// promoted") may still act as the primary until stopped: without the lease
// it is demoted and stopped at once, and still reported as maybe promoted
// meanwhile. (OCF actions are not cut at the lease's end: they could not be
// forced.)
TEST(NodeAgentTest, AFailedPromotedInstanceIsStoppedWithoutTheLease) {
  Harness h;
  h.place("db", {"n1"}, {"n1"});
  h.probe_all_stopped_except({{"db", OpOutcome::kRunningPromoted}});
  h.advance(1000);
  ASSERT_EQ(h.step_ops(), Ops{"monitor db 500"});
  h.answer("db", OpOutcome::kFailed, "OCF exit 9 (failed while promoted)");
  h.set_lease(true, 70);
  EXPECT_EQ(h.step_ops(), Ops{"demote db 4000"});
  EXPECT_TRUE(h.status("db").promoted);
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"stop db 4000"});
}

// A demotion that fails (here the one the lease's end forces) is a failure
// whose recovery is the stop alone: the coordinator's wait for a lost node
// allows one demotion and one stop.
TEST(NodeAgentTest, AFailedDemotionIsFollowedByTheStopAlone) {
  Harness h;
  h.place("db", {"n1"}, {"n1"});
  h.probe_all_stopped_except({{"db", OpOutcome::kRunningPromoted}});
  h.set_lease(true, 70);
  EXPECT_EQ(h.step_ops(), Ops{"demote db 4000"});
  h.answer("db", OpOutcome::kFailed, "OCF exit 1");
  EXPECT_EQ(h.step_ops(), Ops{"stop db 4000"});
  EXPECT_TRUE(h.status("db").promoted);
  h.answer("db", OpOutcome::kOk);
  EXPECT_FALSE(h.status("db").promoted);
}

// Pacemaker recovers a failed promoted instance by demoting it, stopping
// it and starting it again; an agent may refuse to stop a promoted
// instance (Stateful answers 8), so the demotion comes first. A refused
// demotion is logged, not counted again, and the stop follows anyway.
TEST(NodeAgentTest, AFailedPromotedInstanceIsDemotedBeforeItsStop) {
  for (const OpOutcome demoted : {OpOutcome::kOk, OpOutcome::kFailed}) {
    SCOPED_TRACE(op_outcome_name(demoted));
    Harness h;
    h.place("db", {"n1", "n2"}, {"n1"});
    h.probe_all_stopped_except({{"db", OpOutcome::kRunningPromoted}});
    h.advance(1000);
    ASSERT_EQ(h.step_ops(), Ops{"monitor db 500"});
    h.answer("db", OpOutcome::kFailed, "OCF exit 9 (failed while promoted)");
    EXPECT_EQ(h.step_ops(), Ops{"demote db 4000"});
    EXPECT_TRUE(h.status("db").promoted);
    h.answer("db", demoted);
    EXPECT_EQ(h.status("db").promoted, demoted != OpOutcome::kOk);
    EXPECT_EQ(h.step_ops(), Ops{"stop db 4000"});
    h.answer("db", OpOutcome::kOk);
    EXPECT_EQ(h.status("db").fail_count, 1);
    EXPECT_FALSE(h.status("db").promoted);
    EXPECT_EQ(h.step_ops(), Ops{"start db 3000"});  // recovered: started again here
  }
}

TEST(NodeAgentTest, OperationsCarryTheInstanceVariables) {
  Harness h;
  h.step();
  ASSERT_EQ(h.runner.begun.size(), 3U);
  const OpRequest& r = h.runner.begun[2];
  EXPECT_EQ(r.vars.node, "n1");
  EXPECT_EQ(r.vars.node_address, "10.0.0.1");
  EXPECT_EQ(r.vars.resource, "s");
  EXPECT_EQ(r.vars.instance, "s:n1");
  EXPECT_EQ(r.spec.name, "s");
  EXPECT_NE(r.id, 0U);
  EXPECT_NE(h.runner.begun[0].id, h.runner.begun[1].id);
}

}  // namespace
}  // namespace bulwark
