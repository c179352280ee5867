#include "sys/process_group.h"

#include <dirent.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "sys/system_clock.h"

namespace bulwark {

bool group_alive(pid_t pgid) {
  if (pgid <= 0) return false;
  DIR* proc = ::opendir("/proc");
  if (!proc) return ::kill(-pgid, 0) == 0;
  bool alive = false;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') {
      alive = true;
      break;
    }
  }
  ::closedir(proc);
  return alive;
}

bool signal_group(pid_t pgid, int signal) { return pgid > 0 && ::kill(-pgid, signal) == 0; }

bool wait_group_gone(pid_t pgid, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    if (!group_alive(pgid)) return true;
    sleep_ms(20);
  }
  return !group_alive(pgid);
}

}  // namespace bulwark
