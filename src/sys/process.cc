#include "sys/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>

#include "sys/system_clock.h"

extern char** environ;

namespace bulwark {
namespace {

// Children started through spawn_process: their owners reap them. Everything
// else that exits under us is an orphan for reap_orphans. A child is entered
// before fork returns to any other thread, so it is never taken for an
// orphan in between.
std::mutex owned_mu;
std::set<pid_t> owned;

void disown(pid_t pid) {
  std::lock_guard lock(owned_mu);
  owned.erase(pid);
}

}  // namespace

Result<pid_t> spawn_process(const SpawnOptions& o) {
  if (o.argv.empty()) return make_error(Errc::kInvalid, "spawn: empty argv");
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : o.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int log_fd = -1;
  if (!o.log_file.empty()) {
    log_fd = ::open(o.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0)
      return make_error(Errc::kIo, "cannot open " + o.log_file + ": " + std::strerror(errno));
  }
  // A user is looked up before fork: the lookup is not async-signal-safe.
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  if (!o.user.empty()) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwnam_r(o.user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
      if (log_fd >= 0) ::close(log_fd);
      return make_error(Errc::kInvalid, "no user named '" + o.user + "'");
    }
    uid = pw.pw_uid;
    gid = pw.pw_gid;
    int count = 64;
    groups.resize(count);
    if (::getgrouplist(o.user.c_str(), gid, groups.data(), &count) < 0) {
      groups.resize(count);
      ::getgrouplist(o.user.c_str(), gid, groups.data(), &count);
    }
    groups.resize(std::max(count, 0));
  }
  int in_pipe[2] = {-1, -1};
  if (!o.stdin_data.empty()) {
    if (o.stdin_data.size() > 65536 || ::pipe2(in_pipe, O_CLOEXEC) != 0) {
      if (log_fd >= 0) ::close(log_fd);
      return make_error(Errc::kIo, "spawn: cannot make the stdin pipe");
    }
    // Written before fork, while we hold the read end too: it fits the
    // pipe's buffer, and a child that exits at once (exec failed) cannot
    // turn the write into a SIGPIPE.
    const ssize_t n = ::write(in_pipe[1], o.stdin_data.data(), o.stdin_data.size());
    (void)n;
    ::close(in_pipe[1]);
    in_pipe[1] = -1;
  }
  const pid_t parent = ::getpid();
  std::unique_lock owned_lock(owned_mu);
  const pid_t pid = ::fork();
  if (pid < 0) {
    owned_lock.unlock();
    if (log_fd >= 0) ::close(log_fd);
    if (in_pipe[0] >= 0) ::close(in_pipe[0]);
    return make_error(Errc::kIo, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    if (o.new_session) ::setsid();
    if (o.new_process_group) ::setpgid(0, 0);
    if (o.death_signal != 0) {
      ::prctl(PR_SET_PDEATHSIG, o.death_signal);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (in_pipe[0] >= 0) {
      ::dup2(in_pipe[0], 0);
    } else {
      const int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
    }
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    // Libraries open sockets without O_CLOEXEC (Debian's cpp-httplib does):
    // the child must not inherit the API's listening socket or our etcd
    // connections, or they outlive us in it.
    ::close_range(3, ~0U, 0);
    if (!o.working_dir.empty() && ::chdir(o.working_dir.c_str()) != 0) ::_exit(126);
    if (!o.user.empty()) {
      if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
          ::setuid(uid) != 0)
        ::_exit(126);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  // The child makes its group too, but only once it runs: until then a
  // kill(-pid) would miss it. Both calls make the same group; whichever
  // comes second fails harmlessly.
  if (o.new_process_group) ::setpgid(pid, pid);
  owned.insert(pid);
  owned_lock.unlock();
  if (log_fd >= 0) ::close(log_fd);
  if (in_pipe[0] >= 0) ::close(in_pipe[0]);
  return pid;
}

int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

std::optional<int> try_reap(pid_t pid) {
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) {
    disown(pid);
    return status;
  }
  if (r < 0 && errno == ECHILD) {
    disown(pid);
    return 0;  // already reaped elsewhere
  }
  return std::nullopt;
}

void terminate_process(pid_t pid, int grace_ms) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  for (int waited = 0; waited < grace_ms; waited += 10) {
    if (try_reap(pid)) return;
    sleep_ms(10);
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  disown(pid);
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) is parenthesised and may hold anything,
  // spaces and parentheses included: the fields start after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  ProcStat st;
  long ppid = 0, pgrp = 0, session = 0;
  rest >> st.state >> ppid >> pgrp >> session;
  // Fields 7 (tty_nr) to 21 (itrealvalue), then 22: starttime.
  std::string skip;
  for (int field = 7; field < 22; ++field) rest >> skip;
  rest >> st.start_time;
  if (!rest) return std::nullopt;
  st.ppid = static_cast<pid_t>(ppid);
  st.pgrp = static_cast<pid_t>(pgrp);
  st.session = static_cast<pid_t>(session);
  return st;
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (!name.empty() && name[0] >= '0' && name[0] <= '9')
      out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

bool process_alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  const auto st = read_proc_stat(pid);
  // A zombie is dead, only waiting to be reaped.
  return st && st->state != 'Z' && st->state != 'X';
}

Result<CommandOutput> run_command(SpawnOptions options, int timeout_ms) {
  char path[] = "/tmp/bulwark-command-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return make_error(Errc::kIo, std::string("mkstemp: ") + std::strerror(errno));
  ::close(fd);
  options.log_file = path;
  options.new_process_group = true;
  auto pid = spawn_process(options);
  if (!pid) {
    ::unlink(path);
    return pid.error();
  }
  std::optional<int> status;
  for (int waited = 0; waited <= timeout_ms && !(status = try_reap(*pid)); waited += 5) sleep_ms(5);
  if (!status) {
    ::kill(-*pid, SIGKILL);
    terminate_process(*pid, 0);
    ::unlink(path);
    return make_error(Errc::kTimeout, options.argv[0] + " did not finish within " +
                                          std::to_string(timeout_ms) + " ms");
  }
  std::ifstream in(path);
  CommandOutput out;
  out.wait_status = *status;
  out.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (out.output.size() > (1u << 20)) out.output.resize(1u << 20);
  ::unlink(path);
  return out;
}

std::optional<uint64_t> process_start_time(pid_t pid) {
  const auto st = read_proc_stat(pid);
  if (!st) return std::nullopt;
  return st->start_time;
}

Status become_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    return make_error(Errc::kIo, std::string("PR_SET_CHILD_SUBREAPER: ") + std::strerror(errno));
  return Ok{};
}

int reap_orphans() {
  // Our children are the processes whose parent is us (/proc/self/task/*/
  // children is not available on every kernel); an owned one is left to its
  // owner.
  const pid_t self = ::getpid();
  std::vector<pid_t> children;
  for (const pid_t pid : all_pids()) {
    const auto st = read_proc_stat(pid);
    if (st && st->ppid == self && st->state == 'Z') children.push_back(pid);
  }
  int reaped = 0;
  std::lock_guard lock(owned_mu);
  for (const pid_t pid : children) {
    if (owned.count(pid)) continue;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) ++reaped;
  }
  return reaped;
}

std::vector<std::string> current_environment(const std::vector<std::string>& drop_prefixes) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv(*e);
    bool drop = false;
    for (const auto& p : drop_prefixes) drop = drop || kv.rfind(p, 0) == 0;
    if (!drop) out.push_back(kv);
  }
  return out;
}

}  // namespace bulwark
