#include "sys/process_group.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>

#include "sys/system_clock.h"

namespace bulwark {
namespace {

bool has_marker(const char* pid, const std::string& marker) {
  std::ifstream f(std::string("/proc/") + pid + "/environ");
  const std::string env((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Entries are NUL-terminated: match a whole entry, not a prefix of one.
  const std::string entry = marker + '\0';
  return env.compare(0, entry.size(), entry) == 0 || env.find('\0' + entry) != std::string::npos;
}

// Calls `fn` for every live (not zombie) process of the tree, never for
// this process itself.
void for_each_in_tree(const ProcessTree& tree, const std::function<void(pid_t)>& fn) {
  DIR* proc = ::opendir("/proc");
  if (!proc) return;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid == self) continue;
    std::ifstream stat(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0, session = 0;
    rest >> state >> ppid >> pgrp >> session;
    if (state == 'Z' || state == 'X') continue;
    if ((tree.sid > 0 && session == tree.sid) ||
        (!tree.marker.empty() && has_marker(e->d_name, tree.marker)))
      fn(pid);
  }
  ::closedir(proc);
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
