// Renders the counters of frontends, backends and servers: JSON for the
// stats endpoint and `bulwark-proxy ctl show`, Prometheus text for /metrics.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proxy/frontend.h"

namespace bulwark::proxy {

struct StatsSource {
  std::vector<std::shared_ptr<Frontend>> frontends;
  std::vector<std::shared_ptr<Backend>> backends;
};

nlohmann::json render_stats_json(const StatsSource& source);
std::string render_prometheus(const StatsSource& source);
// "up", "down" or "drain".
std::string server_state(const ServerView& view);

}  // namespace bulwark::proxy
