// Tests of the node agent's notifications (clones with notify): the
// handshake through the status records, the lists each notification
// carries, their order, and that nothing a lost lease forces waits for them.
// The harness is node n1; other nodes exist only as their status records.
#include <gtest/gtest.h>

#include "agent/node_agent.h"
#include "agent/node_agent_harness.h"

namespace bulwark {
namespace {

using agent_test::Harness;
using agent_test::Ops;

constexpr const char* kNotifyResources =
    "resources:\n"
    "  - name: db\n"
    "    agent: 'ocf:x:db'\n"
    "    promotable: {promoted: 1, notify: true}\n"
    "    monitor: {interval_ms: 1000, timeout_ms: 500}\n"
    "    start_timeout_ms: 3000\n"
    "    stop_timeout_ms: 4000\n"
    "    notify_timeout_ms: 600\n";

// How long an announcing node waits for a silent peer: the notify timeout,
// the runner's SIGTERM-to-SIGKILL grace, and a margin for status writes.
constexpr int64_t kSilentPeerWaitMs = 600 + kOperationTermGraceMs + 1000;

using Lists = std::map<std::string, std::vector<std::string>>;

struct NotifyHarness : Harness {
  NotifyHarness() : Harness(kNotifyResources) { view.nodes = {"n1", "n2", "n3"}; }

  // Another node's record of db.
  InstanceStatus& peer(const std::string& node, InstanceState state) {
    InstanceStatus& st = statuses[node].resources["db"];
    st.state = state;
    return st;
  }
  static void announce(InstanceStatus& st, const std::string& op, int64_t seq) {
    st.notify.pending = op;
    st.notify.pending_seq = seq;
  }
  static void finish(InstanceStatus& st, InstanceState state) {
    st.state = state;
    st.notify.done = st.notify.pending;
    st.notify.done_seq = st.notify.pending_seq;
    st.notify.pending.clear();
    st.notify.pending_seq = 0;
  }
  // The notification in flight, as "pre-start" or "post-promote".
  std::string event() const {
    const OpRequest& r = in_flight();
    return std::string(r.notify.post ? "post-" : "pre-") + op_kind_name(r.notify.operation);
  }
  Lists lists() const {
    Lists out = in_flight().notify.lists;
    std::erase_if(out, [](const auto& e) { return e.second.empty(); });
    return out;
  }
  const OpRequest& in_flight() const {
    EXPECT_FALSE(runner.pending.empty());
    return runner.pending.rbegin()->second;
  }
  int64_t own_pending_seq() { return status("db").notify.pending_seq; }
  // n1 runs db, unpromoted, and is idle.
  void run_db() {
    place("db", {"n1", "n2"});
    probe({{"db", OpOutcome::kOk}});
    EXPECT_EQ(state("db"), InstanceState::kStarted);
  }
};

TEST(NodeAgentNotifyTest, AStartWaitsUntilEveryActivePeerWasTold) {
  NotifyHarness h;
  InstanceStatus& n2 = h.peer("n2", InstanceState::kStarted);
  h.peer("n3", InstanceState::kStopped);
  h.place("db", {"n1", "n2"});
  h.probe({{"db", OpOutcome::kNotRunning}});
  EXPECT_EQ(h.step_ops(), Ops{});  // announced, not begun
  const InstanceStatus announced = h.status("db");
  EXPECT_EQ(announced.notify.pending, "start");
  ASSERT_GT(announced.notify.pending_seq, 0);
  EXPECT_EQ(h.step_ops(), Ops{});                           // n2 runs db and was not told yet
  n2.notify.told["n1"] = announced.notify.pending_seq - 1;  // of an older announcement
  EXPECT_EQ(h.step_ops(), Ops{});
  n2.notify.told["n1"] = announced.notify.pending_seq;
  EXPECT_EQ(h.step_ops(), Ops{"start db 3000"});
  EXPECT_EQ(h.status("db").notify.pending, "start");  // until it is done
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.status("db").notify.pending, "");
  EXPECT_EQ(h.status("db").notify.done, "start");
  EXPECT_EQ(h.status("db").notify.done_seq, announced.notify.pending_seq);
  // The new instance is told of its own start, with the clone as it was.
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "post-start");
  EXPECT_EQ(h.lists(), (Lists{{"start", {"n1"}},
                              {"active", {"n2"}},
                              {"unpromoted", {"n2"}},
                              {"inactive", {"n1", "n3"}},
                              {"all", {"n1", "n2", "n3"}}}));
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{});
}

TEST(NodeAgentNotifyTest, NobodyActiveMeansNoWait) {
  NotifyHarness h;
  h.peer("n2", InstanceState::kStopped);
  h.place("db", {"n1", "n2"});
  h.probe({{"db", OpOutcome::kNotRunning}});
  EXPECT_EQ(h.step_ops(), Ops{"start db 3000"});
}

TEST(NodeAgentNotifyTest, AnActiveInstanceIsToldBeforeAndAfterAPeersStart) {
  NotifyHarness h;
  h.run_db();
  InstanceStatus& n2 = h.peer("n2", InstanceState::kStopped);
  h.step();
  NotifyHarness::announce(n2, "start", 5000);
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "pre-start");
  EXPECT_EQ(h.lists(), (Lists{{"start", {"n2"}},
                              {"active", {"n1"}},
                              {"unpromoted", {"n1"}},
                              {"inactive", {"n2", "n3"}},
                              {"all", {"n1", "n2", "n3"}}}));
  EXPECT_TRUE(h.status("db").notify.told.empty());  // not before the agent answered
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.status("db").notify.told, (std::map<std::string, int64_t>{{"n2", 5000}}));
  EXPECT_EQ(h.step_ops(), Ops{});  // told once
  NotifyHarness::finish(n2, InstanceState::kStarted);
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "post-start");
  // Active as before the start: n2 is in the start list, not the active one.
  EXPECT_EQ(h.lists()["active"], std::vector<std::string>{"n1"});
  EXPECT_EQ(h.lists()["start"], std::vector<std::string>{"n2"});
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{});
}

TEST(NodeAgentNotifyTest, AFailedNotificationIsLoggedAndTheOperationGoesOn) {
  NotifyHarness h;
  h.run_db();
  InstanceStatus& n2 = h.peer("n2", InstanceState::kStopped);
  h.step();
  NotifyHarness::announce(n2, "start", 5000);
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  h.answer("db", OpOutcome::kFailed, "OCF exit 1");
  // Still told: the peer's start must not wait for an agent that failed.
  EXPECT_EQ(h.status("db").notify.told.at("n2"), 5000);
  EXPECT_EQ(h.state("db"), InstanceState::kStarted);
  EXPECT_EQ(h.status("db").fail_count, 0);
}

TEST(NodeAgentNotifyTest, AStoppingInstanceIsToldOfItsOwnStopFirst) {
  NotifyHarness h;
  h.run_db();
  InstanceStatus& n2 = h.peer("n2", InstanceState::kStarted);
  h.place("db", {"n2"});
  EXPECT_EQ(h.step_ops(), Ops{});  // announced
  const int64_t seq = h.own_pending_seq();
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "pre-stop");
  EXPECT_EQ(h.lists()["stop"], std::vector<std::string>{"n1"});
  EXPECT_EQ(h.lists()["active"], (std::vector<std::string>{"n1", "n2"}));
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{});  // n2 not told yet
  n2.notify.told["n1"] = seq;
  EXPECT_EQ(h.step_ops(), Ops{"stop db 4000"});
  h.answer("db", OpOutcome::kOk);
  // Stopped: no post notification here (n2 gets it).
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.status("db").notify.done, "stop");
}

TEST(NodeAgentNotifyTest, ASilentPeerDelaysTheOperationButNeverBlocksIt) {
  NotifyHarness h;
  h.peer("n2", InstanceState::kStarted);  // never answers
  h.place("db", {"n1", "n2"});
  h.probe({{"db", OpOutcome::kNotRunning}});
  const int64_t announced_at = h.now();
  EXPECT_EQ(h.step_ops(), Ops{});
  h.at(announced_at + kSilentPeerWaitMs - 1);
  EXPECT_EQ(h.step_ops(), Ops{});
  h.at(announced_at + kSilentPeerWaitMs);
  EXPECT_EQ(h.step_ops(), Ops{"start db 3000"});
}

TEST(NodeAgentNotifyTest, AnUnreachablePeerIsNotWaitedFor) {
  NotifyHarness h;
  h.peer("n2", InstanceState::kStarted);
  h.view.unreachable = {"n2"};
  h.place("db", {"n1", "n2"});
  h.probe({{"db", OpOutcome::kNotRunning}});
  EXPECT_EQ(h.step_ops(), Ops{"start db 3000"});
}

TEST(NodeAgentNotifyTest, AWithdrawnAnnouncementIsCleared) {
  NotifyHarness h;
  h.peer("n2", InstanceState::kStarted);
  h.place("db", {"n1", "n2"});
  h.probe({{"db", OpOutcome::kNotRunning}});
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.status("db").notify.pending, "start");
  h.place("db", {"n2"});
  EXPECT_EQ(h.step_ops(), Ops{});
  EXPECT_EQ(h.status("db").notify.pending, "");
}

TEST(NodeAgentNotifyTest, PostsGoFirstThenDemotionsBeforePromotions) {
  NotifyHarness h;
  h.run_db();
  InstanceStatus& n2 = h.peer("n2", InstanceState::kPromoted);
  InstanceStatus& n3 = h.peer("n3", InstanceState::kStarted);
  h.step();
  NotifyHarness::announce(n2, "demote", 7000);
  NotifyHarness::announce(n3, "promote", 7001);
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "pre-demote");
  EXPECT_EQ(h.lists()["promoted"], std::vector<std::string>{"n2"});
  h.answer("db", OpOutcome::kOk);
  NotifyHarness::finish(n2, InstanceState::kStarted);  // n2's demotion done meanwhile
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "post-demote");
  EXPECT_EQ(h.lists()["promoted"], std::vector<std::string>{"n2"});  // as before it
  EXPECT_EQ(h.lists()["demote"], std::vector<std::string>{"n2"});
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "pre-promote");
  EXPECT_EQ(h.lists()["promote"], std::vector<std::string>{"n3"});
  EXPECT_EQ(h.lists().count("promoted"), 0U);
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.status("db").notify.told,
            (std::map<std::string, int64_t>{{"n2", 7000}, {"n3", 7001}}));
}

TEST(NodeAgentNotifyTest, ANodeAboutToPromoteIsNotListedAsPromotedYet) {
  NotifyHarness h;
  h.run_db();
  InstanceStatus& n2 = h.peer("n2", InstanceState::kPromoted);  // as a claim publishes it
  h.step();
  NotifyHarness::announce(n2, "promote", 8000);
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "pre-promote");
  EXPECT_EQ(h.lists(), (Lists{{"promote", {"n2"}},
                              {"active", {"n1", "n2"}},
                              {"unpromoted", {"n1", "n2"}},
                              {"inactive", {"n3"}},
                              {"all", {"n1", "n2", "n3"}}}));
}

TEST(NodeAgentNotifyTest, WhatWasDoneBeforeTheAgentStartedIsNotNews) {
  NotifyHarness h;
  InstanceStatus& n2 = h.peer("n2", InstanceState::kStarted);
  NotifyHarness::announce(n2, "start", 4000);
  NotifyHarness::finish(n2, InstanceState::kStarted);
  h.run_db();
  EXPECT_EQ(h.step_ops(), Ops{});
}

TEST(NodeAgentNotifyTest, ALostLeaseDemotesAtOnceAndNotifiesAfter) {
  NotifyHarness h;
  h.run_db();
  h.place("db", {"n1", "n2"}, {"n1"});
  InstanceStatus& n2 = h.peer("n2", InstanceState::kStarted);
  EXPECT_EQ(h.step_ops(), Ops{});  // announced, and waiting for the claim
  const int64_t seq = h.own_pending_seq();
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});  // pre-promote, here first
  h.answer("db", OpOutcome::kOk);
  n2.notify.told["n1"] = seq;
  EXPECT_EQ(h.step_ops(), Ops{});  // everyone told; the claim is still to make
  EXPECT_EQ(h.agent.wants_claim(), h.revision());
  h.agent.on_claimed(h.revision());
  EXPECT_EQ(h.step_ops(), Ops{"promote db 3000"});
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "post-promote");
  // The lease is lost during the notification: it is ended (it only
  // tells), and the demotion begins at once, unannounced (an OCF demotion
  // runs to its timeout: the coordinator waits for that).
  h.set_lease(false, 0);
  EXPECT_EQ(h.step_ops(), Ops{"demote db 4000"});
  EXPECT_EQ(h.runner.cancelled.size(), 1U);
  h.answer("db", OpOutcome::kOk);
  EXPECT_EQ(h.status("db").notify.done, "demote");
  EXPECT_EQ(h.step_ops(), Ops{"notify db 600"});
  EXPECT_EQ(h.event(), "post-demote");
}

TEST(NodeAgentNotifyTest, AMonitorOfAPromotedInstanceDoesNotHoldUpItsDemotion) {
  NotifyHarness h;
  h.place("db", {"n1"}, {"n1"});
  h.probe({{"db", OpOutcome::kRunningPromoted}});
  h.advance(1000);
  EXPECT_EQ(h.step_ops(), Ops{"monitor db 500"});
  h.set_lease(false, 0);
  EXPECT_EQ(h.step_ops(), Ops{"demote db 4000"});
  EXPECT_EQ(h.runner.cancelled.size(), 1U);
}

// With notify, the demotion that precedes a failed promoted instance's stop
// is announced first, and runs once the peers were told; then the stop.
TEST(NodeAgentNotifyTest, AFailedPromotedInstanceIsDemotedAfterItsAnnouncement) {
  NotifyHarness h;
  InstanceStatus& n2 = h.peer("n2", InstanceState::kStarted);
  h.place("db", {"n1", "n2"}, {"n1"});
  h.probe({{"db", OpOutcome::kRunningPromoted}});
  h.advance(1000);
  ASSERT_EQ(h.step_ops(), Ops{"monitor db 500"});
  h.answer("db", OpOutcome::kFailed, "OCF exit 9 (failed while promoted)");
  EXPECT_EQ(h.step_ops(), Ops{});  // announced, not begun
  EXPECT_EQ(h.status("db").notify.pending, "demote");
  n2.notify.told["n1"] = h.own_pending_seq();
  EXPECT_EQ(h.step_ops(), Ops{"demote db 4000"});
  h.answer("db", OpOutcome::kOk);
  EXPECT_FALSE(h.status("db").promoted);
}

// --- draining a proxy's servers before they stop ---

constexpr const char* kProxyResources =
    "resources:\n"
    "  - name: web\n"
    "    agent: exec\n"
    "    command: [/bin/web]\n"
    "    clone: {}\n"
    "    monitor: {interval_ms: 1000, timeout_ms: 500}\n"
    "    start_timeout_ms: 3000\n"
    "    stop_timeout_ms: 4000\n"
    "    notify_timeout_ms: 600\n"
    "  - name: lb\n"
    "    agent: proxy\n"
    "    clone: {}\n"
    "    monitor: {interval_ms: 1000, timeout_ms: 500}\n"
    "    proxy:\n"
    "      frontends: []\n"
    "      backends: [{name: web, servers_from: {resource: web, port: 80}}]\n";

struct ProxyHarness : Harness {
  ProxyHarness() : Harness(kProxyResources) { view.nodes = {"n1", "n2"}; }
  InstanceStatus& peer(const std::string& resource, InstanceState state) {
    InstanceStatus& st = statuses["n2"].resources[resource];
    st.state = state;
    return st;
  }
};

TEST(NodeAgentNotifyTest, AProxysServerStopsOnlyOnceEveryProxyDrainedIt) {
  ProxyHarness h;
  h.peer("lb", InstanceState::kStarted);
  InstanceStatus& web2 = h.peer("web", InstanceState::kStarted);
  h.place("web", {"n1", "n2"});
  h.place("lb", {"n1", "n2"});
  h.probe({{"web", OpOutcome::kOk}, {"lb", OpOutcome::kOk}});
  h.place("web", {"n2"});
  EXPECT_EQ(h.step_ops(), Ops{});  // announced: every proxy drains it first
  const int64_t seq = h.status("web").notify.pending_seq;
  EXPECT_EQ(h.status("web").notify.pending, "stop");
  EXPECT_EQ(h.step_ops(), Ops{});
  h.agent.acknowledge("web", "n1", seq);  // this node's proxy drained it
  EXPECT_EQ(h.status("web").notify.told.at("n1"), seq);
  EXPECT_EQ(h.step_ops(), Ops{});  // n2's proxy has not
  web2.notify.told["n1"] = seq;
  EXPECT_EQ(h.step_ops(), Ops{"stop web 4000"});
  h.answer("web", OpOutcome::kOk);
  EXPECT_EQ(h.status("web").notify.done, "stop");
  EXPECT_EQ(h.status("web").notify.pending, "");
}

TEST(NodeAgentNotifyTest, AProxysServerStartsAtOnceAndStopsAtOnceWithoutProxies) {
  ProxyHarness h;
  h.place("web", {"n1"});
  h.probe({{"web", OpOutcome::kNotRunning}, {"lb", OpOutcome::kNotRunning}});
  EXPECT_EQ(h.step_ops(), Ops{"start web 3000"});  // starts are not announced
  h.answer("web", OpOutcome::kOk);
  h.place("web", {});
  EXPECT_EQ(h.step_ops(), Ops{"stop web 4000"});  // no proxy runs anywhere
}

}  // namespace
}  // namespace bulwark
