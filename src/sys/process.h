// Starting and ending child processes. The only place that forks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace bulwark {

struct SpawnOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env;    // the child's whole environment, KEY=VALUE
  std::string log_file;            // stdout and stderr appended here; empty: inherit
  int death_signal = 0;            // sent to the child when the parent dies; 0: none
  bool new_session = false;        // setsid(): own session and process group
  bool new_process_group = false;  // setpgid(0, 0): own group, same session
  std::string working_dir;         // empty: inherit
  // Run as this user (its uid, primary group and supplementary groups);
  // empty: as the caller.
  std::string user;
  // Written to the child's stdin, which is then closed (fence agents read
  // their options there); empty: stdin is /dev/null. At most a pipe's
  // buffer (64 KiB), so the write never waits for the child.
  std::string stdin_data;
};

Result<pid_t> spawn_process(const SpawnOptions& options);

// Non-blocking: the raw wait status if `pid` has exited (and is reaped now).
std::optional<int> try_reap(pid_t pid);
// Sends SIGTERM, waits up to grace_ms, then SIGKILL; always reaps.
void terminate_process(pid_t pid, int grace_ms);
// Human-readable form of a wait status: "exit 1", "signal 9".
std::string describe_wait_status(int status);
// True if a process with this pid exists and is not a zombie.
bool process_alive(pid_t pid);

// A descriptor that becomes readable when `pid` exits (pidfd_open), so an
// event loop can reap children without polling; -1 on error.
int open_pidfd(pid_t pid);

// The fields of /proc/PID/stat that Bulwark reads (proc(5)).
struct ProcStat {
  char state = 0;  // R, S, D, T, Z (zombie: dead, waiting to be reaped), X...
  pid_t ppid = 0;
  pid_t pgrp = 0;
  pid_t session = 0;
  uint64_t start_time = 0;  // clock ticks since boot
};
std::optional<ProcStat> read_proc_stat(pid_t pid);
// The pids of every process on the machine, from /proc.
std::vector<pid_t> all_pids();

// The start time of a process in clock ticks since boot (/proc/PID/stat
// field 22): with the pid, it names one process for good, so a recorded pid
// that the kernel gave to another process later is not mistaken for ours.
std::optional<uint64_t> process_start_time(pid_t pid);

// Makes this process the reaper of orphaned descendants (PR_SET_CHILD_SUBREAPER),
// so that a resource's daemonised grandchildren are reaped here at once
// instead of waiting for PID 1.
Status become_subreaper();
// Reaps every exited child that no caller of spawn_process waits for (the
// orphans a subreaper inherits). Returns how many it reaped.
int reap_orphans();

// Runs a short command to completion and returns what it wrote to stdout
// and stderr (up to 1 MiB) and its wait status. It gets `timeout_ms`; then
// its process group is killed and the call fails with kTimeout. Blocks the
// caller: for one-off commands (an OCF agent's meta-data), not for
// anything on a hot path.
struct CommandOutput {
  int wait_status = 0;
  std::string output;
};
Result<CommandOutput> run_command(SpawnOptions options, int timeout_ms);

// The current environment, minus variables whose name starts with one of
// `drop_prefixes`.
std::vector<std::string> current_environment(const std::vector<std::string>& drop_prefixes);

}  // namespace bulwark
