// bulwark-proxy assembled: worker threads, the health checker, the stats
// endpoint and the control socket, and the reload that moves them all from
// one configuration to the next without dropping a connection.
//
// Threading: the main thread (signals) and the control thread call
// reload() and the live-change methods; a mutex serialises them. Workers
// learn about changes through their event loops.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "proxy/control_server.h"
#include "proxy/health_checker.h"
#include "proxy/proxy_config.h"
#include "proxy/stats_render.h"
#include "proxy/worker.h"

namespace httplib {
class Server;
}

namespace bulwark::proxy {

class Proxy {
 public:
  ~Proxy();
  // Opens every socket first: a configuration that cannot be served is
  // refused before anything starts.
  static Result<std::unique_ptr<Proxy>> start(const ProxyConfig& config);

  // All or nothing: on error the running configuration is untouched.
  Status reload(const ProxyConfig& config);
  Status reload_from_file();
  // Stops accepting, lets exchanges in flight finish for up to grace_ms,
  // then closes what is left.
  void stop();

  // Live changes (the control socket); a reload makes the file the truth again.
  nlohmann::json handle_control(const nlohmann::json& request);
  StatsSource stats_source() const;

 private:
  Proxy() = default;
  Status apply(const ProxyConfig& config);
  Status start_stats(const std::string& listen);
  std::shared_ptr<Backend> backend(const std::string& name) const;

  mutable std::mutex mu_;
  ProxyConfig config_;
  WorkerShared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<std::string, std::shared_ptr<Backend>> backends_;
  std::vector<std::shared_ptr<Frontend>> frontends_;
  std::map<std::string, std::vector<int>> listen_fds_;  // by address
  HealthChecker checker_;
  std::unique_ptr<httplib::Server> stats_server_;
  std::thread stats_thread_;
  ControlServer control_;
  bool stopped_ = false;
};

}  // namespace bulwark::proxy
