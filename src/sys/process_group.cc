#include "sys/process_group.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "sys/process.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

bool has_marker(pid_t pid, const std::string& marker) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/environ");
  const std::string env((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Entries are NUL-terminated: match a whole entry, not a prefix of one.
  const std::string entry = marker + '\0';
  return env.compare(0, entry.size(), entry) == 0 || env.find('\0' + entry) != std::string::npos;
}

// Calls `fn` for every live (not zombie) process of the tree, never for
// this process itself.
void for_each_in_tree(const ProcessTree& tree, const std::function<void(pid_t)>& fn) {
  const pid_t self = ::getpid();
  for (const pid_t pid : all_pids()) {
    if (pid == self) continue;
    const auto st = read_proc_stat(pid);
    if (!st || st->state == 'Z' || st->state == 'X') continue;
    if ((tree.sid > 0 && st->session == tree.sid) ||
        (!tree.marker.empty() && has_marker(pid, tree.marker)))
      fn(pid);
  }
}

}  // namespace

bool tree_alive(const ProcessTree& tree) {
  bool alive = false;
  for_each_in_tree(tree, [&](pid_t) { alive = true; });
  return alive;
}

bool signal_tree(const ProcessTree& tree, int signal) {
  // A process forked while we scan may escape one pass; the second pass gets
  // it (a loop bounded at two: a stopped or killed parent forks no more).
  bool any = false;
  for (int pass = 0; pass < 2; ++pass) {
    for_each_in_tree(tree, [&](pid_t pid) { any = ::kill(pid, signal) == 0 || any; });
  }
  return any;
}

bool wait_tree_gone(const ProcessTree& tree, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    if (!tree_alive(tree)) return true;
    sleep_ms(20);
  }
  return !tree_alive(tree);
}

}  // namespace bulwark
