// One asynchronous check on an EventLoop: a TCP connect, an HTTP GET whose
// status line is read, or a command whose exit status is the answer. The
// proxy's health checker and the node agent's monitors and resource-agent
// operations all run through it, so a hung peer or agent never blocks their
// thread.
//
// The probe registers its descriptor (a socket, or the command's pidfd) on
// the loop with the owner's tag, and the owner passes that descriptor's
// events back to on_event(). Deadlines are the owner's: it calls cancel().
//
// Thread-safety: the loop's thread only.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "sys/event_loop.h"
#include "sys/process.h"
#include "sys/socket_address.h"

namespace bulwark {

enum class CheckKind { kTcp, kHttp, kCommand };

struct CheckTarget {
  CheckKind kind = CheckKind::kTcp;
  SocketAddress address;  // tcp, http
  std::string http_path = "/";
  std::string http_host;  // Host header; empty: the address
  int expect_status = 0;  // http: 0 accepts 2xx and 3xx
  SpawnOptions command;   // command: argv, env, log file, user...
  // command: what it leaves running in its process group when it exits
  // outlives it (an OCF agent's start may launch its daemon with `&`, as
  // under Pacemaker); otherwise the group is killed then. A timeout
  // (cancel) ends the whole group either way.
  bool keep_leftovers = false;
};

struct CheckResult {
  bool ok = false;
  int wait_status = 0;  // command: the raw wait status
  std::string detail;   // "connected", "HTTP 503", "exit 1", "connect: Connection refused"
};

class CheckProbe {
 public:
  CheckProbe(EventLoop& loop, uint64_t tag) : loop_(loop), tag_(tag) {}
  ~CheckProbe() { cancel(SIGKILL); }
  CheckProbe(const CheckProbe&) = delete;
  CheckProbe& operator=(const CheckProbe&) = delete;

  // Starts the check. A result now means it finished (or failed) at once.
  std::optional<CheckResult> begin(const CheckTarget& target);
  // The registered descriptor's events; a result when the check is over.
  std::optional<CheckResult> on_event(uint32_t events);
  bool in_flight() const { return fd_ >= 0; }
  // The command's pid (its process group leader), -1 if none.
  pid_t pid() const { return pid_; }
  // Ends the check: closes the socket, or sends `signal` to the command's
  // process group. With a signal other than SIGKILL the command keeps
  // its pidfd registered, so its exit still arrives through on_event.
  void cancel(int signal);

 private:
  std::optional<CheckResult> finish(bool ok, std::string detail, int wait_status = 0);
  void close_fd();

  EventLoop& loop_;
  uint64_t tag_;
  CheckTarget target_;
  int fd_ = -1;
  pid_t pid_ = -1;
  bool connected_ = false;
  std::string request_;
  std::string response_;
};

// "HTTP/1.1 200 OK\r\n..." -> 200, or 0 when the line is not there yet or bad.
int parse_http_status(const std::string& response);

}  // namespace bulwark
