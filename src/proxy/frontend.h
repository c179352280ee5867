// A frontend as the workers see it: its configuration, its backend, its
// counters and its listening sockets (one per worker, SO_REUSEPORT). A reload
// that keeps a frontend's address hands the same sockets to the new object,
// so no connection waiting in a backlog is lost.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "proxy/backend.h"
#include "proxy/proxy_config.h"
#include "proxy/stats_counters.h"

namespace bulwark::proxy {

struct Frontend {
  Frontend(FrontendConfig c, std::shared_ptr<Backend> b, std::vector<int> fds,
           std::shared_ptr<Counters> k, std::shared_ptr<std::atomic<int>> cur)
      : config(std::move(c)),
        backend(std::move(b)),
        listen_fds(std::move(fds)),
        counters(std::move(k)),
        current(std::move(cur)) {}

  const FrontendConfig config;
  const std::shared_ptr<Backend> backend;
  // One per worker; owned (and closed) by the Proxy, which closes a socket
  // only after every worker has stopped watching it.
  const std::vector<int> listen_fds;
  // Counters and the connection count survive a reload of the frontend.
  const std::shared_ptr<Counters> counters;
  const std::shared_ptr<std::atomic<int>> current;
};

}  // namespace bulwark::proxy
