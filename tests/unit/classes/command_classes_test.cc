// Tests of the real OperationRunner with the classes that run commands
// (ClassDispatcher with exec, ocf, systemd): real processes (/bin/sleep,
// /bin/sh, Debian's ocf:heartbeat:Dummy, fake OCF agents written by the
// test) on a real EventLoop, in a temporary directory. Every process a test
// starts is killed and every directory removed in TearDown, also after a
// failure.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "agent/class_dispatcher.h"
#include "classes/exec/exec_runner.h"
#include "classes/ocf/ocf_runner.h"
#include "classes/systemd/systemd_runner.h"
#include "sys/process.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kWaitMs = 10000;  // generous: a loaded CI machine

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text, bool executable = false) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
  if (executable) ::chmod(path.c_str(), 0755);
}

// The pid in a file a script wrote ("$$" or "$!"), 0 if none yet.
pid_t pid_in(const std::string& path) {
  std::ifstream f(path);
  pid_t pid = 0;
  f >> pid;
  return pid;
}

// "pid 1234" -> 1234.
pid_t pid_of(const OpCompletion& c) {
  if (c.detail.rfind("pid ", 0) != 0) return 0;
  return static_cast<pid_t>(std::stol(c.detail.substr(4)));
}

// The dispatcher's options and those of the classes, as bulwarkd sets them.
struct RunnerOptions : ClassDispatcherOptions {
  std::string ocf_root = "/usr/lib/ocf";
  std::string systemd_marker = "/run/systemd/system";

  ClassDispatcherOptions with_classes() const {
    ClassDispatcherOptions o = *this;
    o.classes = {{AgentClass::kExec, exec_class()},
                 {AgentClass::kOcf, ocf_class(ocf_root)},
                 {AgentClass::kSystemd, systemd_class({.marker = systemd_marker})}};
    return o;
  }
};

class CommandClassesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bulwark-runner-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.runtime_dir = dir_ + "/run";
    options_.log_dir = dir_ + "/log";
    runner_ = std::make_unique<ClassDispatcher>(clock_, loop_, options_.with_classes());
  }

  void TearDown() override {
    // Resources outlive their runner by design (adoption): end them here.
    runner_.reset();
    std::error_code ec;
    if (fs::exists(options_.runtime_dir, ec)) {
      for (const auto& e : fs::directory_iterator(options_.runtime_dir, ec)) {
        if (e.path().extension() != ".pid") continue;
        std::ifstream f(e.path());
        pid_t pid = 0;
        uint64_t start = 0;
        if (f >> pid >> start) track(pid, start);
      }
    }
    for (const auto& [pid, start] : tracked_) {
      // Only the process we saw: a pid reused since then is someone else's.
      if (pid <= 0 || process_start_time(pid) != start) continue;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    fs::remove_all(dir_, ec);
  }

  // Kills `pid` (and its group) in TearDown should the test not end it.
  void track(pid_t pid, std::optional<uint64_t> start = std::nullopt) {
    if (pid <= 0) return;
    if (!start) start = process_start_time(pid);
    if (start) tracked_.emplace_back(pid, *start);
  }

  void new_runner() {
    runner_.reset();
    runner_ = std::make_unique<ClassDispatcher>(clock_, loop_, options_.with_classes());
  }

  static ResourceSpec exec_spec(const std::string& name, std::vector<std::string> argv) {
    ResourceSpec s;
    s.name = name;
    s.agent.agent_class = AgentClass::kExec;
    s.agent.command = std::move(argv);
    s.monitor.interval_ms = 1000;
    s.monitor.timeout_ms = 2000;
    return s;
  }
  static ResourceSpec ocf_spec(const std::string& name, const std::string& provider,
                               const std::string& type) {
    ResourceSpec s;
    s.name = name;
    s.agent.agent_class = AgentClass::kOcf;
    s.agent.provider = provider;
    s.agent.type = type;
    s.monitor.interval_ms = 1000;
    s.monitor.timeout_ms = 2000;
    return s;
  }

  OpRequest request(OpKind kind, const ResourceSpec& spec, int timeout_ms = 5000) {
    OpRequest r;
    r.id = next_id_++;
    r.kind = kind;
    r.spec = spec;
    r.vars = InstanceVars{"n1", "127.0.0.1", spec.name, spec.name + ":n1"};
    r.timeout_ms = timeout_ms;
    return r;
  }

  // Turns the loop as bulwarkd's agent thread does until the completion
  // with `id` arrives or `timeout_ms` passes.
  std::optional<OpCompletion> wait_for(uint64_t id, int64_t timeout_ms = kWaitMs) {
    const int64_t deadline = clock_.mono_ms() + timeout_ms;
    while (true) {
      runner_->tick();
      for (auto& c : runner_->take_completions()) completions_.push_back(std::move(c));
      auto it = std::find_if(completions_.begin(), completions_.end(),
                             [&](const OpCompletion& c) { return c.id == id; });
      if (it != completions_.end()) {
        OpCompletion c = *it;
        completions_.erase(it);
        return c;
      }
      const int64_t now = clock_.mono_ms();
      if (now >= deadline) return std::nullopt;
      const int64_t until = std::min({deadline, runner_->next_deadline_ms(), now + 50});
      for (const epoll_event& ev :
           loop_.wait(static_cast<int>(std::max<int64_t>(until - now, 0)))) {
        if (ClassDispatcher::owns(ev.data.u64)) runner_->on_event(ev.data.u64, ev.events);
      }
    }
  }

  // Begins the operation and waits for its answer.
  OpCompletion run(OpKind kind, const ResourceSpec& spec, int timeout_ms = 5000) {
    const OpRequest r = request(kind, spec, timeout_ms);
    runner_->begin(r);
    auto c = wait_for(r.id);
    EXPECT_TRUE(c.has_value()) << op_kind_name(kind) << " " << spec.name << ": no answer";
    if (!c)
      return OpCompletion{.id = r.id,
                          .resource = spec.name,
                          .kind = kind,
                          .outcome = OpOutcome::kTimeout,
                          .detail = "no answer"};
    EXPECT_EQ(c->resource, spec.name);
    EXPECT_EQ(c->kind, kind);
    return *c;
  }

  // Waits until `pid` is gone (a zombie counts as gone).
  static bool gone_within(pid_t pid, int64_t timeout_ms) {
    const int64_t deadline = mono_ms_now() + timeout_ms;
    while (process_alive(pid)) {
      if (mono_ms_now() >= deadline) return false;
      sleep_ms(5);
    }
    return true;
  }
  static bool leads_its_group_within(pid_t pid, int64_t timeout_ms) {
    const int64_t deadline = mono_ms_now() + timeout_ms;
    while (::getpgid(pid) != pid) {
      if (mono_ms_now() >= deadline) return false;
      sleep_ms(1);
    }
    return true;
  }
  static bool file_within(const std::string& path, int64_t timeout_ms) {
    const int64_t deadline = mono_ms_now() + timeout_ms;
    while (!fs::exists(path) || fs::file_size(path) == 0) {
      if (mono_ms_now() >= deadline) return false;
      sleep_ms(5);
    }
    return true;
  }

  std::string pid_file(const std::string& resource) const {
    return options_.runtime_dir + "/" + resource + ".pid";
  }

  SystemClock clock_;
  EventLoop loop_;
  std::string dir_;
  RunnerOptions options_;
  std::unique_ptr<ClassDispatcher> runner_;
  uint64_t next_id_ = 1;
  std::vector<OpCompletion> completions_;  // arrived, not yet asked for
  std::vector<std::pair<pid_t, uint64_t>> tracked_;
};

// --- exec ---

TEST_F(CommandClassesTest, ExecProbeStartMonitorStop) {
  const ResourceSpec s = exec_spec("sleeper", {"/bin/sleep", "60"});
  OpCompletion c = run(OpKind::kProbe, s);
  EXPECT_EQ(c.outcome, OpOutcome::kNotRunning);

  c = run(OpKind::kStart, s);
  ASSERT_EQ(c.outcome, OpOutcome::kOk) << c.detail;
  const pid_t pid = pid_of(c);
  track(pid);
  ASSERT_GT(pid, 0) << c.detail;
  EXPECT_TRUE(process_alive(pid));
  EXPECT_TRUE(leads_its_group_within(pid, kWaitMs));  // stop reaches its children
  // The pid line, then the definition it was started with.
  const std::string pid_text = read_file(pid_file("sleeper"));
  EXPECT_EQ(pid_text.substr(0, pid_text.find('\n') + 1),
            std::to_string(pid) + " " + std::to_string(*process_start_time(pid)) + "\n");
  EXPECT_NE(pid_text.find("\"command\":[\"/bin/sleep\",\"60\"]"), std::string::npos) << pid_text;

  c = run(OpKind::kMonitor, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk) << c.detail;
  c = run(OpKind::kProbe, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "pid " + std::to_string(pid));
  c = run(OpKind::kStart, s);  // already running: no twin
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "");

  c = run(OpKind::kStop, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "signal 15");
  EXPECT_FALSE(process_alive(pid));
  EXPECT_FALSE(fs::exists(pid_file("sleeper")));
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);  // already reaped: no zombie left

  c = run(OpKind::kMonitor, s);
  EXPECT_EQ(c.outcome, OpOutcome::kNotRunning);
  EXPECT_EQ(c.detail, "not running");
  c = run(OpKind::kStop, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "not running");
  c = run(OpKind::kPromote, s);
  EXPECT_EQ(c.outcome, OpOutcome::kFailed);
  EXPECT_EQ(c.detail, "exec resources have no promoted role");
  EXPECT_TRUE(completions_.empty());  // nothing unsolicited: the exit was asked for
}

TEST_F(CommandClassesTest, ExecStopReachesTheWholeProcessGroup) {
  const std::string child = dir_ + "/child.pid";
  const ResourceSpec s =
      exec_spec("tree", {"/bin/sh", "-c", "/bin/sleep 60 & echo $! > " + child + "; wait"});
  OpCompletion c = run(OpKind::kStart, s);
  ASSERT_EQ(c.outcome, OpOutcome::kOk) << c.detail;
  track(pid_of(c));
  ASSERT_TRUE(file_within(child, kWaitMs));
  const pid_t sleeper = pid_in(child);
  track(sleeper);
  ASSERT_TRUE(process_alive(sleeper));
  c = run(OpKind::kStop, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_TRUE(gone_within(sleeper, 2000));
}

// spawn_process (src/sys/process.cc) calls setpgid(0, 0) in the child only,
// so for a moment after spawn_process returns the child is still in the
// daemon's process group and kill(-pid, ...) finds no group. CheckProbe::
// cancel(SIGKILL) then waits in waitpid() for a command it did not kill: a
// runner destroyed (daemon shutdown) right after it began an OCF operation
// hangs until the agent ends on its own. The usual cure is setpgid(pid, pid)
// in the parent as well.
TEST_F(CommandClassesTest, AnOperationEndsWithItsRunnerAtOnce) {
  options_.ocf_root = dir_ + "/ocf";
  new_runner();
  write_file(options_.ocf_root + "/resource.d/test/Slow", "#!/bin/sh\nexec /bin/sleep 3\n", true);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const OpRequest r = request(OpKind::kStart, ocf_spec("slow", "test", "Slow"), 10000);
    runner_->begin(r);
    const int64_t begun = mono_ms_now();
    new_runner();  // the operation's command is killed with it
    EXPECT_LT(mono_ms_now() - begun, 1000);
  }
}

TEST_F(CommandClassesTest, AProcessThatIgnoresSigtermIsKilledAtTheStopTimeout) {
  const std::string ready = dir_ + "/ready";
  const ResourceSpec s =
      exec_spec("stubborn", {"/bin/sh", "-c", "trap '' TERM; echo > " + ready + "; /bin/sleep 60"});
  OpCompletion c = run(OpKind::kStart, s);
  ASSERT_EQ(c.outcome, OpOutcome::kOk) << c.detail;
  const pid_t pid = pid_of(c);
  track(pid);
  ASSERT_TRUE(file_within(ready, kWaitMs));  // the trap is set before the SIGTERM
  const int64_t begun = mono_ms_now();
  c = run(OpKind::kStop, s, 300);
  const int64_t took = mono_ms_now() - begun;
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "killed at the stop timeout");
  EXPECT_GE(took, 300);
  EXPECT_LT(took, 1500);  // SIGKILL at the timeout, not after a grace period
  EXPECT_FALSE(process_alive(pid));
  EXPECT_FALSE(fs::exists(pid_file("stubborn")));
}

TEST_F(CommandClassesTest, AnUnsolicitedExitIsReportedAtOnce) {
  const ResourceSpec s = exec_spec("victim", {"/bin/sleep", "60"});
  OpCompletion c = run(OpKind::kStart, s);
  ASSERT_EQ(c.outcome, OpOutcome::kOk) << c.detail;
  const pid_t pid = pid_of(c);
  track(pid);
  const int64_t killed = mono_ms_now();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  auto exit = wait_for(0, kWaitMs);
  ASSERT_TRUE(exit.has_value());
  EXPECT_LT(mono_ms_now() - killed, 1000);  // from the pidfd, not a monitor
  EXPECT_EQ(exit->resource, "victim");
  EXPECT_EQ(exit->kind, OpKind::kMonitor);
  EXPECT_EQ(exit->outcome, OpOutcome::kNotRunning);
  EXPECT_EQ(exit->detail, "the process exited (signal 9)");
  EXPECT_FALSE(fs::exists(pid_file("victim")));
  c = run(OpKind::kMonitor, s);
  EXPECT_EQ(c.outcome, OpOutcome::kNotRunning);
}

TEST_F(CommandClassesTest, ASecondRunnerAdoptsFromThePidFile) {
  const ResourceSpec s = exec_spec("kept", {"/bin/sleep", "60"});
  OpCompletion c = run(OpKind::kStart, s);
  ASSERT_EQ(c.outcome, OpOutcome::kOk) << c.detail;
  const pid_t pid = pid_of(c);
  track(pid);
  new_runner();                     // a restarted daemon
  EXPECT_TRUE(process_alive(pid));  // the resource outlived its runner
  c = run(OpKind::kProbe, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "pid " + std::to_string(pid));
  c = run(OpKind::kMonitor, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  c = run(OpKind::kStart, s);  // adopted, so not started twice
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "");
  c = run(OpKind::kStop, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_FALSE(process_alive(pid));
  EXPECT_FALSE(fs::exists(pid_file("kept")));
}

// A restarted daemon learns what an adopted instance was started with, to
// stop it with that and to restart it if the file now says otherwise.
TEST_F(CommandClassesTest, TheDefinitionAnInstanceRunsIsRecordedForTheNextRunner) {
  ResourceSpec s = exec_spec("recorded", {"/bin/sleep", "61"});
  s.agent.params["MODE"] = "old";
  EXPECT_EQ(runner_->recorded("recorded"), std::nullopt);
  OpRequest r = request(OpKind::kStart, s);
  r.restart_generation = 4;
  runner_->begin(r);
  ASSERT_TRUE(wait_for(r.id).has_value());
  track(pid_of(run(OpKind::kProbe, s)));
  new_runner();
  auto rec = runner_->recorded("recorded");
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->spec.agent.command, (std::vector<std::string>{"/bin/sleep", "61"}));
  EXPECT_EQ(rec->spec.agent.params.at("MODE"), "old");
  EXPECT_EQ(rec->restart_generation, 4);
  EXPECT_EQ(run(OpKind::kProbe, s).outcome, OpOutcome::kOk);
  EXPECT_EQ(run(OpKind::kStop, s).outcome, OpOutcome::kOk);
  EXPECT_EQ(runner_->recorded("recorded"), std::nullopt);  // stopped: nothing runs
  // A record that does not parse is unknown, never half a definition; so
  // is a pid file of an earlier version (a pid line only).
  std::ofstream(options_.runtime_dir + "/recorded.definition.json")
      << "{\"version\": 1, \"spec\": 7}";
  EXPECT_EQ(runner_->recorded("recorded"), std::nullopt);
  std::ofstream(pid_file("recorded")) << "1 2\n";
  EXPECT_EQ(runner_->recorded("recorded"), std::nullopt);
  fs::remove(pid_file("recorded"));
}

TEST_F(CommandClassesTest, OcfReloadRunsTheAgentsReloadAction) {
  if (::access("/usr/lib/ocf/resource.d/heartbeat/Dummy", X_OK) != 0)
    GTEST_SKIP() << "resource-agents is not installed";
  ResourceSpec d = ocf_spec("dummy", "heartbeat", "Dummy");
  d.agent.params["fake"] = "1";
  ASSERT_EQ(run(OpKind::kStart, d).outcome, OpOutcome::kOk);
  d.agent.params["fake"] = "2";
  EXPECT_EQ(run(OpKind::kReload, d).outcome, OpOutcome::kFailed);  // no reload traits
  d.agent.reload = ReloadTraits{"reload", {"fake"}};
  const OpCompletion c = run(OpKind::kReload, d);
  EXPECT_EQ(c.outcome, OpOutcome::kOk) << c.detail;
  auto rec = runner_->recorded("dummy");
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->spec.agent.params.at("fake"), "2");
  std::ifstream log(options_.log_dir + "/dummy.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Reloading dummy"), std::string::npos) << text;
  EXPECT_EQ(run(OpKind::kStop, d).outcome, OpOutcome::kOk);
}

TEST_F(CommandClassesTest, AStalePidFileIsNotAdopted) {
  // A live process whose pid is in the file, with another start time: the
  // kernel gave the recorded pid to someone else.
  SpawnOptions o;
  o.argv = {"/bin/sleep", "60"};
  o.new_process_group = true;
  auto other = spawn_process(o);
  ASSERT_TRUE(other.ok());
  track(*other);
  const uint64_t start = *process_start_time(*other);
  write_file(pid_file("stale"), std::to_string(*other) + " " + std::to_string(start + 1) + "\n");
  const ResourceSpec s = exec_spec("stale", {"/bin/sleep", "60"});
  OpCompletion c = run(OpKind::kProbe, s);
  EXPECT_EQ(c.outcome, OpOutcome::kNotRunning);
  EXPECT_FALSE(fs::exists(pid_file("stale")));
  c = run(OpKind::kStop, s);  // nothing of ours to stop: the other process is left alone
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "not running");
  EXPECT_TRUE(process_alive(*other));
  // A pid file naming a process that is gone is not adopted either.
  write_file(pid_file("stale"), "999999999 " + std::to_string(start) + "\n");
  c = run(OpKind::kProbe, s);
  EXPECT_EQ(c.outcome, OpOutcome::kNotRunning);
  EXPECT_FALSE(fs::exists(pid_file("stale")));
}

TEST_F(CommandClassesTest, VariablesAreExpandedInArgvAndExported) {
  options_.inherited_env = {"BULWARK_DEV_NODE=/tmp/devnode"};
  new_runner();
  const std::string out = dir_ + "/vars.txt";
  ResourceSpec s = exec_spec(
      "vars", {"/bin/sh", "-c",
               "printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' \"$0\" \"$1\" \"$BULWARK_NODE\" "
               "\"$BULWARK_NODE_ADDRESS\" \"$BULWARK_RESOURCE\" \"$BULWARK_INSTANCE\" \"$EXTRA\" "
               "\"$HOME\" \"$BULWARK_DEV_NODE\" \"$LEAKED\" > " +
                   out + "; exec /bin/sleep 60",
               "${BULWARK_NODE_ADDRESS}", "addr=${BULWARK_NODE_ADDRESS}:80/${BULWARK_INSTANCE}"});
  s.agent.params["EXTRA"] = "${BULWARK_NODE}-x";
  ::setenv("LEAKED", "from the test process", 1);
  OpCompletion c = run(OpKind::kStart, s);
  ::unsetenv("LEAKED");
  ASSERT_EQ(c.outcome, OpOutcome::kOk) << c.detail;
  track(pid_of(c));
  ASSERT_TRUE(file_within(out, kWaitMs));
  EXPECT_EQ(read_file(out),
            "127.0.0.1|addr=127.0.0.1:80/vars:n1|n1|127.0.0.1|vars|vars:n1|n1-x|/|/tmp/devnode|\n");
  EXPECT_EQ(run(OpKind::kStop, s).outcome, OpOutcome::kOk);
}

// A listening socket on 127.0.0.1, port chosen by the kernel.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_, 16) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }

  // Waits until a connection to 127.0.0.1:`port` is refused.
  static bool refused_within(int port, int64_t timeout_ms) {
    const int64_t deadline = mono_ms_now() + timeout_ms;
    while (true) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(port));
      const bool refused = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0;
      ::close(fd);
      if (refused) return true;
      if (mono_ms_now() >= deadline) return false;
      sleep_ms(5);
    }
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(CommandClassesTest, ExecMonitorChecksATcpPort) {
  Listener listener;
  const int port = listener.port();
  ASSERT_GT(port, 0);
  ResourceSpec s = exec_spec("served", {"/bin/sleep", "60"});
  s.monitor.tcp = "${BULWARK_NODE_ADDRESS}:" + std::to_string(port);
  OpCompletion c = run(OpKind::kStart, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "connected");
  c = run(OpKind::kMonitor, s);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "connected");
  listener.close();
  // The kernel of some sandboxes still completes a handshake for a moment
  // after the close; the runner's check is not what is tested there.
  ASSERT_TRUE(Listener::refused_within(port, kWaitMs));
  c = run(OpKind::kMonitor, s);
  EXPECT_EQ(c.outcome, OpOutcome::kFailed);
  EXPECT_EQ(c.detail, "connect: Connection refused");
  EXPECT_EQ(run(OpKind::kStop, s).outcome, OpOutcome::kOk);
}

TEST_F(CommandClassesTest, AStartWhoseCheckNeverPassesTimesOutAndLeavesAStop) {
  const int port = [] {
    Listener l;  // a port that was free a moment ago and is closed now
    return l.port();
  }();
  ASSERT_TRUE(Listener::refused_within(port, kWaitMs));
  ResourceSpec s = exec_spec("unserved", {"/bin/sleep", "60"});
  s.monitor.tcp = "127.0.0.1:" + std::to_string(port);
  const int64_t begun = mono_ms_now();
  OpCompletion c = run(OpKind::kStart, s, 500);
  EXPECT_GE(mono_ms_now() - begun, 400);
  EXPECT_EQ(c.outcome, OpOutcome::kTimeout);
  EXPECT_EQ(c.detail, "never passed its check: connect: Connection refused");
  // The process itself still runs: the agent's stop (after a failed start)
  // ends it.
  std::ifstream f(pid_file("unserved"));
  pid_t pid = 0;
  ASSERT_TRUE(f >> pid);
  track(pid);
  EXPECT_TRUE(process_alive(pid));
  EXPECT_EQ(run(OpKind::kStop, s).outcome, OpOutcome::kOk);
  EXPECT_FALSE(process_alive(pid));
}

// --- ocf ---

TEST_F(CommandClassesTest, OcfHeartbeatDummyLifecycle) {
  if (::access("/usr/lib/ocf/resource.d/heartbeat/Dummy", X_OK) != 0)
    GTEST_SKIP() << "resource-agents is not installed";
  const ResourceSpec d = ocf_spec("dummy", "heartbeat", "Dummy");
  const std::string state = options_.runtime_dir + "/ocf/Dummy-dummy.state";
  OpCompletion c = run(OpKind::kProbe, d);
  EXPECT_EQ(c.outcome, OpOutcome::kNotRunning);
  EXPECT_EQ(c.detail, "OCF exit 7");
  c = run(OpKind::kStart, d);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, "OCF exit 0");
  EXPECT_TRUE(fs::exists(state));  // HA_RSCTMP is this node's runtime directory
  c = run(OpKind::kMonitor, d);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  c = run(OpKind::kProbe, d);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  c = run(OpKind::kStop, d);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_FALSE(fs::exists(state));
  c = run(OpKind::kMonitor, d);
  EXPECT_EQ(c.outcome, OpOutcome::kNotRunning);
  EXPECT_EQ(c.detail, "OCF exit 7");
}

TEST_F(CommandClassesTest, AMissingOcfAgentIsNotRunningAndCannotStart) {
  options_.ocf_root = dir_ + "/ocf";
  new_runner();
  const ResourceSpec d = ocf_spec("ghost", "test", "Missing");
  const std::string why = "no OCF agent at " + dir_ + "/ocf/resource.d/test/Missing";
  OpCompletion c = run(OpKind::kProbe, d);
  EXPECT_EQ(c.outcome, OpOutcome::kNotRunning);
  EXPECT_EQ(c.detail, why);
  c = run(OpKind::kStop, d);
  EXPECT_EQ(c.outcome, OpOutcome::kOk);
  EXPECT_EQ(c.detail, why);
  c = run(OpKind::kStart, d);
  EXPECT_EQ(c.outcome, OpOutcome::kFailed);
  EXPECT_EQ(c.detail, why);
}

TEST_F(CommandClassesTest, AHangingOcfAgentIsKilledAtItsTimeout) {
  struct Case {
    const char* name;
    const char* prelude;  // before the agent hangs
    int64_t min_ms;
    int64_t max_ms;
    const char* detail;
  };
  const Case cases[] = {
      {"Hang", "", 300, 1800, "killed after 300 ms"},
      // Ignores SIGTERM: SIGKILL after the 2 s grace.
      {"HangHard", "trap '' TERM\n", 2300, 4500, "killed after 300 ms (SIGTERM, then SIGKILL)"},
  };
  options_.ocf_root = dir_ + "/ocf";
  new_runner();
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    const std::string self = dir_ + "/" + k.name + ".pid";
    const std::string child = dir_ + "/" + k.name + ".child";
    write_file(options_.ocf_root + "/resource.d/test/" + k.name,
               std::string("#!/bin/sh\n") + k.prelude + "echo $$ > " + self +
                   "\n/bin/sleep 60 &\necho $! > " + child + "\nwait\n",
               true);
    const ResourceSpec h = ocf_spec(std::string("h-") + k.name, "test", k.name);
    const int64_t begun = mono_ms_now();
    OpCompletion c = run(OpKind::kMonitor, h, 300);
    const int64_t took = mono_ms_now() - begun;
    track(pid_in(self));
    track(pid_in(child));
    EXPECT_EQ(c.outcome, OpOutcome::kTimeout);
    EXPECT_EQ(c.detail, k.detail);
    EXPECT_GE(took, k.min_ms);
    EXPECT_LT(took, k.max_ms);
    ASSERT_GT(pid_in(self), 0);
    ASSERT_GT(pid_in(child), 0);
    EXPECT_TRUE(gone_within(pid_in(self), 1000));
    EXPECT_TRUE(gone_within(pid_in(child), 1000));  // its children too
  }
}

// As under Pacemaker, what an OCF action leaves running is the agent's (a
// start that launches its daemon with `&`); only a stop's leftovers end
// with it.
TEST_F(CommandClassesTest, WhatAnOcfStartLeavesRunningOutlivesIt) {
  options_.ocf_root = dir_ + "/ocf";
  new_runner();
  const std::string daemon = dir_ + "/daemon.pid";
  const std::string helper = dir_ + "/helper.pid";
  const std::string script = R"sh(
case "$1" in
start) /bin/sleep 60 & echo $! > "$d"; exit 0 ;;
monitor) [ -s "$d" ] && kill -0 "$(cat "$d")" && exit 0; exit 7 ;;
stop) /bin/sleep 60 & echo $! > "$h"
  [ -s "$d" ] && kill "$(cat "$d")"; rm -f "$d"; exit 0 ;;
esac
exit 3
)sh";
  write_file(options_.ocf_root + "/resource.d/test/Bg",
             "#!/bin/sh\nd=" + daemon + "\nh=" + helper + script, true);
  const ResourceSpec bg = ocf_spec("bg", "test", "Bg");
  EXPECT_EQ(run(OpKind::kStart, bg).outcome, OpOutcome::kOk);
  const pid_t started = pid_in(daemon);
  ASSERT_GT(started, 0);
  track(started);
  EXPECT_FALSE(gone_within(started, 300)) << "the daemon the start launched was killed with it";
  EXPECT_EQ(run(OpKind::kMonitor, bg).outcome, OpOutcome::kOk);
  EXPECT_EQ(run(OpKind::kStop, bg).outcome, OpOutcome::kOk);
  const pid_t left = pid_in(helper);
  ASSERT_GT(left, 0);
  track(left);
  EXPECT_TRUE(gone_within(started, 1000));  // the agent's stop ended it
  EXPECT_TRUE(gone_within(left, 1000));     // the stop's own leftovers end with the stop
}

// At its timeout an action's whole group ends, even what it would have left
// running (keep_leftovers) and even a child that ignores SIGTERM while the
// agent's shell dies of it.
TEST_F(CommandClassesTest, AnOcfTimeoutEndsAChildThatIgnoresSigterm) {
  options_.ocf_root = dir_ + "/ocf";
  new_runner();
  const std::string child = dir_ + "/stubborn.child";
  write_file(options_.ocf_root + "/resource.d/test/Stubborn",
             "#!/bin/sh\n(trap '' TERM; exec /bin/sleep 60) &\necho $! > " + child + "\nwait\n",
             true);
  const OpCompletion c = run(OpKind::kMonitor, ocf_spec("stubborn", "test", "Stubborn"), 300);
  track(pid_in(child));
  EXPECT_EQ(c.outcome, OpOutcome::kTimeout);
  ASSERT_GT(pid_in(child), 0);
  EXPECT_TRUE(gone_within(pid_in(child), 1000));
}

TEST_F(CommandClassesTest, OcfExitCodesAreMapped) {
  options_.ocf_root = dir_ + "/ocf";
  new_runner();
  const std::string log = dir_ + "/calls.log";
  write_file(options_.ocf_root + "/resource.d/test/Code",
             "#!/bin/sh\n"
             "echo \"$1 $OCF_RESKEY_CRM_meta_interval $OCF_RESKEY_CRM_meta_timeout "
             "$OCF_RESOURCE_INSTANCE $OCF_RESKEY_CRM_meta_on_node $HA_RSCTMP\" > " +
                 log +
                 "\n"
                 "exit \"$OCF_RESKEY_code\"\n",
             true);
  struct Case {
    OpKind kind;
    int code;
    OpOutcome outcome;
    const char* detail;
    const char* action;  // the agent's argument, then the interval
  };
  const Case cases[] = {
      {OpKind::kProbe, 0, OpOutcome::kOk, "OCF exit 0", "monitor 0"},
      {OpKind::kProbe, 7, OpOutcome::kNotRunning, "OCF exit 7", "monitor 0"},
      {OpKind::kProbe, 8, OpOutcome::kRunningPromoted, "OCF exit 8", "monitor 0"},
      {OpKind::kProbe, 5, OpOutcome::kNotRunning, "OCF exit 5 (not installed)", "monitor 0"},
      {OpKind::kProbe, 9, OpOutcome::kFailed, "OCF exit 9 (failed while promoted)", "monitor 0"},
      {OpKind::kProbe, 1, OpOutcome::kFailed, "OCF exit 1", "monitor 0"},
      {OpKind::kMonitor, 0, OpOutcome::kOk, "OCF exit 0", "monitor 1000"},
      {OpKind::kMonitor, 7, OpOutcome::kNotRunning, "OCF exit 7", "monitor 1000"},
      {OpKind::kMonitor, 8, OpOutcome::kRunningPromoted, "OCF exit 8", "monitor 1000"},
      {OpKind::kMonitor, 5, OpOutcome::kFailed, "OCF exit 5", "monitor 1000"},
      {OpKind::kMonitor, 9, OpOutcome::kFailed, "OCF exit 9 (failed while promoted)",
       "monitor 1000"},
      {OpKind::kStart, 0, OpOutcome::kOk, "OCF exit 0", "start 0"},
      {OpKind::kStart, 1, OpOutcome::kFailed, "OCF exit 1", "start 0"},
      {OpKind::kStart, 5, OpOutcome::kFailed, "OCF exit 5", "start 0"},
      {OpKind::kStop, 0, OpOutcome::kOk, "OCF exit 0", "stop 0"},
      {OpKind::kStop, 7, OpOutcome::kOk, "OCF exit 7", "stop 0"},  // already stopped
      {OpKind::kStop, 1, OpOutcome::kFailed, "OCF exit 1", "stop 0"},
      {OpKind::kPromote, 0, OpOutcome::kOk, "OCF exit 0", "promote 0"},
      {OpKind::kPromote, 1, OpOutcome::kFailed, "OCF exit 1", "promote 0"},
      {OpKind::kDemote, 0, OpOutcome::kOk, "OCF exit 0", "demote 0"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(std::string(op_kind_name(k.kind)) + " exits " + std::to_string(k.code));
    ResourceSpec s = ocf_spec("coded", "test", "Code");
    s.agent.params["code"] = std::to_string(k.code);
    std::error_code ec;
    fs::remove(log, ec);
    const OpCompletion c = run(k.kind, s, 4321);
    EXPECT_EQ(op_outcome_name(c.outcome), std::string(op_outcome_name(k.outcome)));
    EXPECT_EQ(c.detail, k.detail);
    EXPECT_EQ(read_file(log),
              std::string(k.action) + " 4321 coded n1 " + options_.runtime_dir + "/ocf\n");
  }
}

TEST_F(CommandClassesTest, NotifyPassesTheEventAndTheCloneMetaAttributes) {
  options_.ocf_root = dir_ + "/ocf";
  new_runner();
  const std::string log = dir_ + "/notify.log";
  // Prints every OCF_RESKEY_CRM_meta_ variable, sorted; | marks the ends
  // of each value (lists that are empty are a single space).
  write_file(
      options_.ocf_root + "/resource.d/test/Told",
      "#!/bin/sh\n"
      "echo \"$1\" > " +
          log +
          "\n"
          "env | grep '^OCF_RESKEY_CRM_meta_' | grep -v '_timeout=\\|_interval=\\|_on_node=' "
          "| sort | sed 's/=\\(.*\\)$/=|\\1|/' >> " +
          log + "\n",
      true);
  ResourceSpec s = ocf_spec("db", "test", "Told");
  s.kind = ResourceKind::kPromotable;
  s.promoted_max = 1;
  s.notify = true;
  OpRequest r = request(OpKind::kNotify, s);
  r.clone_max = 3;
  r.notify.post = false;
  r.notify.operation = OpKind::kPromote;
  r.notify.lists = {{"promote", {"n2"}}, {"active", {"n1", "n2"}},     {"inactive", {"n3"}},
                    {"promoted", {}},    {"unpromoted", {"n1", "n2"}}, {"all", {"n1", "n2", "n3"}}};
  runner_->begin(r);
  const auto c = wait_for(r.id);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->outcome, OpOutcome::kOk);
  const std::string p = "OCF_RESKEY_CRM_meta_";
  const std::vector<std::string> want = {
      "notify",
      p + "clone_max=|3|",
      p + "clone_node_max=|1|",
      p + "master_max=|1|",
      p + "master_node_max=|1|",
      p + "notify=|true|",
      p + "notify_active_resource=|db:n1 db:n2|",
      p + "notify_active_uname=|n1 n2|",
      p + "notify_all_resource=|db:n1 db:n2 db:n3|",
      p + "notify_all_uname=|n1 n2 n3|",
      p + "notify_demote_resource=| |",
      p + "notify_demote_uname=| |",
      p + "notify_inactive_resource=|db:n3|",
      p + "notify_inactive_uname=|n3|",
      p + "notify_master_resource=| |",
      p + "notify_master_uname=| |",
      p + "notify_operation=|promote|",
      p + "notify_promote_resource=|db:n2|",
      p + "notify_promote_uname=|n2|",
      p + "notify_promoted_resource=| |",
      p + "notify_promoted_uname=| |",
      p + "notify_slave_resource=|db:n1 db:n2|",
      p + "notify_slave_uname=|n1 n2|",
      p + "notify_start_resource=| |",
      p + "notify_start_uname=| |",
      p + "notify_stop_resource=| |",
      p + "notify_stop_uname=| |",
      p + "notify_type=|pre|",
      p + "notify_unpromoted_resource=|db:n1 db:n2|",
      p + "notify_unpromoted_uname=|n1 n2|",
      p + "promotable=|true|",
      p + "promoted_max=|1|",
      p + "promoted_node_max=|1|",
  };
  std::string expected;
  for (const auto& line : want) expected += line + "\n";
  EXPECT_EQ(read_file(log), expected);
}

TEST_F(CommandClassesTest, ExecAndSystemdHaveNoNotify) {
  options_.systemd_marker = "/";  // "systemd runs": the refusal is about notify itself
  new_runner();
  ResourceSpec e;
  e.name = "e";
  e.agent.command = {"/bin/true"};
  ResourceSpec u;
  u.name = "u";
  u.agent.agent_class = AgentClass::kSystemd;
  u.agent.unit = "bulwark-test.service";
  for (const ResourceSpec& spec : {e, u}) {
    const OpCompletion c = run(OpKind::kNotify, spec);
    EXPECT_EQ(c.outcome, OpOutcome::kFailed) << spec.name;
    EXPECT_NE(c.detail.find("no notify action"), std::string::npos) << c.detail;
  }
}

// --- the dispatcher ---

TEST_F(CommandClassesTest, AClassThatIsNotRegisteredFailsClearlyAndRecordsNothing) {
  ResourceSpec v;
  v.name = "addr";
  v.agent.agent_class = AgentClass::kVip;  // not registered in this test
  const OpCompletion c = run(OpKind::kStart, v);
  EXPECT_EQ(c.outcome, OpOutcome::kFailed);
  EXPECT_EQ(c.detail, "agent class vip is not available in this process");
  EXPECT_FALSE(fs::exists(options_.runtime_dir + "/addr.definition.json"));
  EXPECT_FALSE(runner_->recorded("addr").has_value());
}

// --- systemd ---

TEST_F(CommandClassesTest, SystemdWithoutSystemdIsAClearError) {
  options_.systemd_marker = dir_ + "/no-systemd-here";
  new_runner();
  ResourceSpec s;
  s.name = "unit";
  s.agent.agent_class = AgentClass::kSystemd;
  s.agent.unit = "bulwark-test.service";
  const std::string why =
      "systemd:bulwark-test.service needs systemd as PID 1, and this machine runs without it "
      "(no " +
      dir_ + "/no-systemd-here)";
  struct Case {
    OpKind kind;
    OpOutcome outcome;
  };
  for (const Case& k :
       {Case{OpKind::kProbe, OpOutcome::kNotRunning}, Case{OpKind::kMonitor, OpOutcome::kFailed},
        Case{OpKind::kStart, OpOutcome::kFailed}, Case{OpKind::kStop, OpOutcome::kOk}}) {
    SCOPED_TRACE(op_kind_name(k.kind));
    const OpCompletion c = run(k.kind, s);
    EXPECT_EQ(op_outcome_name(c.outcome), std::string(op_outcome_name(k.outcome)));
    EXPECT_EQ(c.detail, why);
  }
}

}  // namespace
}  // namespace bulwark
