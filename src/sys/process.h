// Starting and ending child processes. The only place that forks.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace bulwark {

struct SpawnOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // the child's whole environment, KEY=VALUE
  std::string log_file;          // stdout and stderr appended here; empty: inherit
  int death_signal = 0;          // sent to the child when the parent dies; 0: none
  bool new_session = false;      // setsid(): own session and process group
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

// The current environment, minus variables whose name starts with one of
// `drop_prefixes`.
std::vector<std::string> current_environment(const std::vector<std::string>& drop_prefixes);

}  // namespace bulwark
