// Tests of the Fencer with real child processes: a fake fence agent (a shell
// script in a temporary directory) records the options it reads on stdin
// and exits as the test tells it (0, 1, or hangs). Time is a fake clock the
// test moves, so deadlines and retry pauses are exact; the test learns of a
// new call from the kernel's list of this process's children.
#include "coordinator/fencer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/env.h"
#include "fake_clock.h"
#include "sys/process.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kWaitMs = 10000;

using test_support::FakeClock;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class FencerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    children_file_ = "/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/children";
    if (!fs::exists(children_file_)) GTEST_SKIP() << "needs " << children_file_;
    char tmpl[] = "/tmp/bulwark-fencer-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    script_ = dir_ + "/fence_test";
    // Records stdin as in.PID, then exits with the code in `mode`, or
    // hangs (with a child of its own) when `mode` says so.
    std::string script = R"(#!/bin/sh
cat > DIR/in.$$
mode=$(cat DIR/mode)
if [ "$mode" = hang ]; then
  /bin/sleep 60 &
  echo $! > DIR/child.$$
  wait
fi
exit "$mode"
)";
    for (auto at = script.find("DIR"); at != std::string::npos;
         at = script.find("DIR", at + dir_.size()))
      script.replace(at, 3, dir_);
    std::ofstream(script_) << script;
    set_mode("0");
    known_ = children();
  }

  void TearDown() override {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("child.", 0) == 0) track(static_cast<pid_t>(std::stol(read_file(e.path()))));
    }
    for (pid_t pid : children()) track(pid);
    for (const auto& [pid, start] : tracked_) {
      if (process_start_time(pid) != start) continue;  // gone, or someone else's now
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, WNOHANG);
    }
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  void track(pid_t pid) {
    if (auto start = process_start_time(pid)) tracked_.emplace_back(pid, *start);
  }

  void set_mode(const std::string& mode) { std::ofstream(dir_ + "/mode") << mode << "\n"; }

  FencingConfig config(int timeout_ms = 5000) const {
    FencingConfig c;
    c.command = {"/bin/sh", script_};
    c.params = {{"ipaddr", "192.0.2.9"}, {"login", "admin"}, {"password", "s3cret"}};
    c.action = "off";
    c.timeout_ms = timeout_ms;
    return c;
  }

  // This process's children, zombies included (a call not yet polled).
  std::set<pid_t> children() const {
    std::ifstream f(children_file_);
    std::set<pid_t> out;
    pid_t pid = 0;
    while (f >> pid) out.insert(pid);
    return out;
  }
  // The children started since the last call (fence calls: the test
  // starts no other process).
  std::vector<pid_t> new_calls() {
    std::vector<pid_t> out;
    for (pid_t pid : children()) {
      if (known_.insert(pid).second) {
        out.push_back(pid);
        track(pid);
      }
    }
    return out;
  }
  pid_t one_new_call() {
    const auto calls = new_calls();
    EXPECT_EQ(calls.size(), 1U);
    return calls.empty() ? 0 : calls.front();
  }

  // Waits until the call `pid` has exited (a zombie waiting for poll()).
  static bool exited_within(pid_t pid, int64_t timeout_ms) {
    const int64_t deadline = mono_ms_now() + timeout_ms;
    while (process_alive(pid)) {
      if (mono_ms_now() >= deadline) return false;
      sleep_ms(2);
    }
    return true;
  }
  // Waits until the hanging call `pid` runs its own child; returns its pid.
  pid_t hanging_child(pid_t pid) {
    const std::string path = dir_ + "/child." + std::to_string(pid);
    const int64_t deadline = mono_ms_now() + kWaitMs;
    while (read_file(path).empty() || read_file(path).back() != '\n') {
      if (mono_ms_now() >= deadline) return 0;
      sleep_ms(2);
    }
    const pid_t child = static_cast<pid_t>(std::stol(read_file(path)));
    track(child);
    return child;
  }
  std::string stdin_of(pid_t pid) const { return read_file(dir_ + "/in." + std::to_string(pid)); }

  // Runs one failing or succeeding call to its end and polls it.
  void finish_call(Fencer& f, pid_t pid) {
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(exited_within(pid, kWaitMs));
    f.poll();
    EXPECT_FALSE(process_alive(pid));
    EXPECT_EQ(children().count(pid), 0U) << "poll() reaps the call";
  }

  FakeClock clock_{50000};
  ProcessFenceLauncher launcher_;
  std::string dir_;
  std::string script_;
  std::string children_file_;
  std::set<pid_t> known_;
  std::vector<std::pair<pid_t, uint64_t>> tracked_;
};

TEST_F(FencerTest, OptionsAreSortedKeyValueLinesWithPerNodeOverrides) {
  const Fencer f(clock_, launcher_, config(),
                 {{"n2", {{"port", "vm-n2"}, {"ipaddr", "192.0.2.20"}, {"action", "reboot"}}}});
  EXPECT_TRUE(f.configured());
  EXPECT_EQ(f.options_for("n2"),
            "action=reboot\n"
            "ipaddr=192.0.2.20\n"
            "login=admin\n"
            "nodename=n2\n"
            "password=s3cret\n"
            "plug=vm-n2\n");
  EXPECT_EQ(f.options_for("n3"),
            "action=off\n"
            "ipaddr=192.0.2.9\n"
            "login=admin\n"
            "nodename=n3\n"
            "password=s3cret\n"
            "plug=n3\n");
}

// fence-agents (fencing.py, _parse_input_stdin) reads both "plug" and
// "port" into the one option --plug, the later line winning: a default
// "port=NODE" line after a node's `plug` override would fence the plug
// named like the node. Only `plug` is sent.
TEST_F(FencerTest, APerNodePlugOverrideIsThePlugTheAgentReads) {
  const Fencer f(clock_, launcher_, config(), {{"n2", {{"plug", "vm-n2"}}}});
  const std::string opts = f.options_for("n2");
  EXPECT_EQ(opts.find("port="), std::string::npos) << opts;
  EXPECT_EQ(opts.find("plug=n2\n"), std::string::npos) << opts;
  EXPECT_NE(opts.find("plug=vm-n2\n"), std::string::npos) << opts;
}

TEST_F(FencerTest, ASuccessfulCallConfirmsTheNode) {
  Fencer f(clock_, launcher_, config(), {{"n2", {{"port", "vm-n2"}}}});
  EXPECT_FALSE(f.in_flight());
  f.request("n2", 7);
  EXPECT_TRUE(f.in_flight());  // the coordinator steps every tick meanwhile
  const pid_t pid = one_new_call();
  ASSERT_TRUE(exited_within(pid, kWaitMs));
  EXPECT_TRUE(f.confirmed().empty());  // only once poll() has seen the exit
  f.request("n2", 7);                  // under way: not a second call
  EXPECT_EQ(new_calls(), std::vector<pid_t>{});
  finish_call(f, pid);
  EXPECT_FALSE(f.in_flight());
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
  EXPECT_EQ(stdin_of(pid), f.options_for("n2"));
  EXPECT_EQ(
      stdin_of(pid),
      "action=off\nipaddr=192.0.2.9\nlogin=admin\nnodename=n2\npassword=s3cret\nplug=vm-n2\n");
  f.request("n2", 7);  // confirmed: nothing more to do
  clock_.set_mono_ms(clock_.mono_ms() + 60000);
  f.request("n2", 7);
  f.poll();
  EXPECT_EQ(new_calls(), std::vector<pid_t>{});
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
}

TEST_F(FencerTest, NodesAreFencedInParallelEachWithItsOwnOptions) {
  Fencer f(clock_, launcher_, config(), {});
  f.request("n2", 7);
  const pid_t first = one_new_call();
  f.request("n3", 7);
  const pid_t second = one_new_call();
  finish_call(f, first);
  finish_call(f, second);
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}, {"n3", 7}}));
  EXPECT_EQ(stdin_of(first), f.options_for("n2"));
  EXPECT_EQ(stdin_of(second), f.options_for("n3"));
}

TEST_F(FencerTest, AFailedCallIsRetriedAfterADoublingPause) {
  set_mode("1");
  Fencer f(clock_, launcher_, config(), {});
  // The pause after the n-th failure in a row: 500 ms doubling, at most 10 s.
  const int64_t pauses[] = {500, 1000, 2000, 4000, 8000, 10000, 10000};
  f.request("n2", 7);
  pid_t pid = one_new_call();
  for (int64_t pause : pauses) {
    SCOPED_TRACE("pause " + std::to_string(pause));
    clock_.set_mono_ms(clock_.mono_ms() + 7);  // the failure is seen at this poll
    const int64_t failed_at = clock_.mono_ms();
    finish_call(f, pid);
    EXPECT_TRUE(f.confirmed().empty());
    clock_.set_mono_ms(failed_at + pause - 1);
    f.request("n2", 7);
    f.poll();
    ASSERT_EQ(new_calls(), std::vector<pid_t>{});
    clock_.set_mono_ms(failed_at + pause);
    f.request("n2", 7);
    pid = one_new_call();
    ASSERT_GT(pid, 0);
  }
  finish_call(f, pid);  // the eighth failure
  set_mode("0");
  clock_.set_mono_ms(clock_.mono_ms() + 10000);
  f.request("n2", 7);
  finish_call(f, one_new_call());
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
  // A success resets the count: after forget, the first failure pauses 500 ms.
  f.forget_if_new_life("n2", 7);  // the same life answering: a view older than the fence
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
  f.forget_if_new_life("n2", 8);  // a new life: done with
  EXPECT_TRUE(f.confirmed().empty());
  set_mode("1");
  f.request("n2", 7);
  const int64_t failed_at = clock_.mono_ms();
  finish_call(f, one_new_call());
  clock_.set_mono_ms(failed_at + 499);
  f.request("n2", 7);
  EXPECT_EQ(new_calls(), std::vector<pid_t>{});
  clock_.set_mono_ms(failed_at + 500);
  f.request("n2", 7);
  EXPECT_EQ(new_calls().size(), 1U);
}

TEST_F(FencerTest, AMissingAgentIsAFailedCall) {
  FencingConfig c = config();
  c.command = {dir_ + "/no_such_fence_agent"};
  Fencer f(clock_, launcher_, c, {});
  f.request("n2", 7);
  finish_call(f, one_new_call());  // the child's exec fails: exit 127
  EXPECT_TRUE(f.confirmed().empty());
  clock_.set_mono_ms(clock_.mono_ms() + 500);
  f.request("n2", 7);
  EXPECT_EQ(new_calls().size(), 1U);  // retried like any failure
}

TEST_F(FencerTest, AHungCallIsKilledAtItsTimeoutAndRetried) {
  set_mode("hang");
  Fencer f(clock_, launcher_, config(1000), {});
  const int64_t begun = clock_.mono_ms();
  f.request("n2", 7);
  const pid_t pid = one_new_call();
  const pid_t child = hanging_child(pid);
  ASSERT_GT(child, 0);
  clock_.set_mono_ms(begun + 999);
  f.poll();
  EXPECT_TRUE(process_alive(pid));
  EXPECT_TRUE(process_alive(child));
  clock_.set_mono_ms(begun + 1000);
  f.poll();
  EXPECT_FALSE(process_alive(pid));
  EXPECT_EQ(children().count(pid), 0U);  // reaped
  EXPECT_TRUE(exited_within(child, 2000)) << "the agent's own children are killed with it";
  EXPECT_TRUE(f.confirmed().empty());
  // Retried after the first pause, counted from the kill.
  set_mode("0");
  clock_.set_mono_ms(begun + 1499);
  f.request("n2", 7);
  EXPECT_EQ(new_calls(), std::vector<pid_t>{});
  clock_.set_mono_ms(begun + 1500);
  f.request("n2", 7);
  finish_call(f, one_new_call());
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
}

TEST_F(FencerTest, ForgetMeansTheNextLossIsFencedAgain) {
  Fencer f(clock_, launcher_, config(), {});
  f.request("n2", 7);
  finish_call(f, one_new_call());
  ASSERT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
  f.forget_if_new_life("n2", 7);  // the same life answering: a view older than the fence
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
  f.forget_if_new_life("n2", 8);  // a new life: done with
  EXPECT_TRUE(f.confirmed().empty());
  f.request("n2", 7);
  const pid_t again = one_new_call();
  // Forgetting while a call is under way does not start a second one, and
  // the call's answer still counts.
  f.forget_if_new_life("n2", 8);
  f.request("n2", 7);
  EXPECT_EQ(new_calls(), std::vector<pid_t>{});
  finish_call(f, again);
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
  f.forget_if_new_life("n3", 1);  // never fenced: nothing happens
  EXPECT_EQ(f.confirmed(), (std::map<std::string, uint64_t>{{"n2", 7}}));
}

TEST_F(FencerTest, WithoutACommandNothingIsFenced) {
  FencingConfig c = config();
  c.command.clear();
  Fencer f(clock_, launcher_, c, {});
  EXPECT_FALSE(f.configured());
  f.request("n2", 7);
  f.poll();
  EXPECT_EQ(new_calls(), std::vector<pid_t>{});
  EXPECT_TRUE(f.confirmed().empty());
}

// ~Fencer ends calls under way with terminate_process(pid), which signals
// the agent's process only; a fence agent's own children (ipmitool, ssh,
// here a sleep) stay behind. poll() kills the whole group at a timeout;
// the destructor should too.
TEST_F(FencerTest, DestroyingTheFencerEndsCallsUnderWayWithTheirChildren) {
  set_mode("hang");
  pid_t pid = 0;
  pid_t child = 0;
  {
    Fencer f(clock_, launcher_, config(), {});
    f.request("n2", 7);
    pid = one_new_call();
    child = hanging_child(pid);
    ASSERT_GT(child, 0);
  }
  EXPECT_FALSE(process_alive(pid));
  EXPECT_TRUE(exited_within(child, 2000));
}

}  // namespace
}  // namespace bulwark
