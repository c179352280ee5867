// Active health checks, on a thread of their own: TCP connect, an HTTP
// request with an expected status, or an external command (exit 0 means
// healthy). A server's first result decides its state at once; after that
// it takes `fall` bad results in a row to mark it down and `rise` good ones
// to bring it back; a server that real traffic keeps failing is checked at
// once, and one bad result then takes it down. Servers of backends without
// a check that passive checking marked down get traffic again after a
// cool-down.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proxy/backend.h"
#include "sys/check_probe.h"
#include "sys/event_loop.h"

namespace bulwark::proxy {

class HealthChecker {
 public:
  HealthChecker() = default;
  ~HealthChecker();

  void start();
  void stop();
  // Any thread: the backends whose servers to check.
  void set_backends(std::vector<std::shared_ptr<Backend>> backends);

 private:
  struct Probe {
    std::shared_ptr<Backend> backend;
    std::shared_ptr<Server> server;
    CheckConfig check;     // of the check in progress
    CheckConfig pending;   // from the backend; taken when the next check starts
    bool settled = false;  // a first result has been seen
    bool last_up = true;   // the server's state after the last result
    bool suspect = false;  // traffic failed: one bad result takes it down
    int good = 0;
    int bad = 0;
    int64_t next_ms = 0;
    int64_t deadline_ms = 0;
    int64_t down_since_ms = 0;  // unchecked servers: passive down since
    bool in_flight = false;
    std::unique_ptr<CheckProbe> probe;  // made once; its tag finds this Probe
    bool seen = false;                  // still listed by its backend (refresh bookkeeping)
  };

  void run();
  void refresh();
  void begin(Probe& p);
  void on_event(Probe& p, uint32_t events);
  CheckTarget target_of(const Probe& p) const;
  void finish(Probe& p, bool healthy, const std::string& why);
  void cleanup(Probe& p);

  EventLoop loop_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::shared_ptr<Backend>> backends_;  // guarded by mu_
  std::unordered_map<const Server*, std::unique_ptr<Probe>> probes_;
  std::unordered_map<uint64_t, Probe*> by_tag_;
  uint64_t next_tag_ = 1;
  int64_t now_ms_ = 0;
};

}  // namespace bulwark::proxy
