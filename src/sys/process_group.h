// A node's process tree, as `bulwark dev` uses it: every node's daemon runs in
// its own session, and everything started for the node carries a marker in
// its environment (BULWARK_DEV_NODE=DIR), so one call reaches its daemon,
// its etcd member, its resources (each in a process group of its own) and
// everything they started, as a power switch would, even resources adopted
// by a later daemon of the node in another session.
#pragma once

#include <sys/types.h>

#include <string>

namespace bulwark {

// The environment variable that marks a dev node's processes.
constexpr const char* kDevNodeVariable = "BULWARK_DEV_NODE";

struct ProcessTree {
  pid_t sid = 0;       // the daemon's session; 0: none
  std::string marker;  // "KEY=VALUE" in a process's environment; empty: none
};

// True if some process of the tree is alive (zombies do not count: they are
// dead and only wait for a parent, possibly a slow PID 1, to reap them).
bool tree_alive(const ProcessTree& tree);
// Signals every process of the tree; false if none received it.
bool signal_tree(const ProcessTree& tree, int signal);
// Waits up to timeout_ms for every process of the tree to be gone.
bool wait_tree_gone(const ProcessTree& tree, int timeout_ms);

}  // namespace bulwark
