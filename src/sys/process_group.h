// Process groups, as `bulwark dev` uses them: every node runs in its own
// session, so one signal to the group reaches its daemon, its etcd member and
// everything they started.
#pragma once

#include <sys/types.h>

namespace bulwark {

// True if some process of the group is alive (zombies do not count: they are
// dead and only wait for a parent, possibly a slow PID 1, to reap them).
bool group_alive(pid_t pgid);
// Signals the whole group; false if no process received it.
bool signal_group(pid_t pgid, int signal);
// Waits up to timeout_ms for every process of the group to be gone.
bool wait_group_gone(pid_t pgid, int timeout_ms);

}  // namespace bulwark
