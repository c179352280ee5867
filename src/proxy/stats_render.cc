#include "proxy/stats_render.h"

#include <map>
#include <set>
#include <sstream>

namespace bulwark::proxy {
namespace {

struct CounterName {
  Counter counter;
  const char* json;
  const char* metric;  // Prometheus name after bulwark_proxy_<scope>_
  const char* help;
};

const CounterName kCounterNames[] = {
    {kConnections, "connections_total", "connections_total", "Connections accepted or opened."},
    {kRequests, "requests_total", "requests_total", "HTTP requests, or TCP sessions."},
    {kErrors, "errors_total", "errors_total", "Requests that ended in an error."},
    {kRetries, "retries_total", "retries_total", "Attempts made again on another server."},
    {kBytesIn, "bytes_in_total", "bytes_in_total", "Bytes received."},
    {kBytesOut, "bytes_out_total", "bytes_out_total", "Bytes sent."},
    {kConnectErrors, "connect_errors_total", "connect_errors_total", "Failed server connects."},
    {kResponseErrors, "response_errors_total", "response_errors_total",
     "Server resets, timeouts or bad responses."},
};

const std::pair<Counter, const char*> kStatusClasses[] = {
    {kResponses2xx, "2xx"}, {kResponses3xx, "3xx"}, {kResponses4xx, "4xx"}, {kResponses5xx, "5xx"}};

nlohmann::json counters_json(const CounterTotals& t, bool latency) {
  nlohmann::json j;
  for (const auto& c : kCounterNames) j[c.json] = t.values[c.counter];
  nlohmann::json responses;
  for (const auto& [counter, name] : kStatusClasses) responses[name] = t.values[counter];
  j["responses"] = responses;
  if (latency) {
    nlohmann::json buckets = nlohmann::json::array();
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i < t.latency_buckets.size(); ++i) {
      cumulative += t.latency_buckets[i];
      const std::string le =
          i < kLatencyBoundsUs.size() ? std::to_string(kLatencyBoundsUs[i]) : "+Inf";
      buckets.push_back({{"le_us", le}, {"count", cumulative}});
    }
    j["response_time"] = {
        {"count", cumulative}, {"sum_us", t.latency_sum_us}, {"buckets", buckets}};
  }
  return j;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class PromWriter {
 public:
  void family(const std::string& name, const char* type, const char* help) {
    if (declared_.insert(name).second == false) return;
    headers_[name] =
        std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    order_.push_back(name);
  }
  void sample(const std::string& family_name, const std::string& suffix, const std::string& labels,
              double value) {
    std::ostringstream line;
    line << family_name << suffix << "{" << labels << "} " << value << "\n";
    lines_[family_name] += line.str();
  }
  std::string str() const {
    std::string out;
    for (const auto& name : order_) {
      out += headers_.at(name);
      auto it = lines_.find(name);
      if (it != lines_.end()) out += it->second;
    }
    return out;
  }

 private:
  std::set<std::string> declared_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> headers_;
  std::map<std::string, std::string> lines_;
};

void prom_counters(PromWriter& w, const std::string& scope, const std::string& labels,
                   const CounterTotals& t, bool latency) {
  for (const auto& c : kCounterNames) {
    const std::string name = "bulwark_proxy_" + scope + "_" + c.metric;
    w.family(name, "counter", c.help);
    w.sample(name, "", labels, static_cast<double>(t.values[c.counter]));
  }
  const std::string responses = "bulwark_proxy_" + scope + "_responses_total";
  w.family(responses, "counter", "Responses by status class.");
  for (const auto& [counter, cls] : kStatusClasses)
    w.sample(responses, "", labels + ",code=\"" + cls + "\"",
             static_cast<double>(t.values[counter]));
  if (!latency) return;
  const std::string hist = "bulwark_proxy_" + scope + "_response_seconds";
  w.family(hist, "histogram", "Time from request to complete response.");
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < t.latency_buckets.size(); ++i) {
    cumulative += t.latency_buckets[i];
    std::ostringstream le;
    if (i < kLatencyBoundsUs.size()) {
      le << static_cast<double>(kLatencyBoundsUs[i]) / 1e6;
    } else {
      le << "+Inf";
    }
    w.sample(hist, "_bucket", labels + ",le=\"" + le.str() + "\"", static_cast<double>(cumulative));
  }
  w.sample(hist, "_sum", labels, static_cast<double>(t.latency_sum_us) / 1e6);
  w.sample(hist, "_count", labels, static_cast<double>(cumulative));
}

}  // namespace

std::string server_state(const ServerView& view) {
  if (view.draining) return "drain";
  return view.server->up() ? "up" : "down";
}

nlohmann::json render_stats_json(const StatsSource& source) {
  nlohmann::json out;
  out["frontends"] = nlohmann::json::array();
  for (const auto& f : source.frontends) {
    nlohmann::json j = counters_json(f->counters->totals(), false);
    j["name"] = f->config.name;
    j["mode"] = mode_name(f->config.mode);
    j["listen"] = f->config.listen.to_string();
    j["backend"] = f->config.backend;
    j["current_connections"] = f->current->load();
    j["maxconn"] = f->config.maxconn;
    out["frontends"].push_back(j);
  }
  out["backends"] = nlohmann::json::array();
  for (const auto& b : source.backends) {
    const auto settings = b->settings();
    nlohmann::json j = counters_json(b->counters().totals(), true);
    j["name"] = b->name();
    j["balance"] = balance_name(settings->balance);
    j["check"] = check_type_name(settings->check.type);
    j["queued"] = b->queued();
    int up = 0;
    j["servers"] = nlohmann::json::array();
    for (const ServerView& v : b->servers()) {
      nlohmann::json s = counters_json(v.server->counters().totals(), true);
      s["name"] = v.config.name;
      s["address"] = v.config.address.to_string();
      s["state"] = server_state(v);
      s["weight"] = v.config.weight;
      s["backup"] = v.config.backup;
      s["maxconn"] = v.config.maxconn;
      s["active"] = v.server->active();
      up += v.server->up() && !v.draining;
      j["servers"].push_back(s);
    }
    j["servers_up"] = up;
    out["backends"].push_back(j);
  }
  return out;
}

std::string render_prometheus(const StatsSource& source) {
  PromWriter w;
  for (const auto& f : source.frontends) {
    const std::string labels = "frontend=\"" + escape_label(f->config.name) + "\"";
    w.family("bulwark_proxy_frontend_current_connections", "gauge", "Open client connections.");
    w.sample("bulwark_proxy_frontend_current_connections", "", labels, f->current->load());
    prom_counters(w, "frontend", labels, f->counters->totals(), false);
  }
  for (const auto& b : source.backends) {
    const std::string labels = "backend=\"" + escape_label(b->name()) + "\"";
    w.family("bulwark_proxy_backend_queued", "gauge", "Requests waiting for a server slot.");
    w.sample("bulwark_proxy_backend_queued", "", labels, b->queued());
    prom_counters(w, "backend", labels, b->counters().totals(), true);
    for (const ServerView& v : b->servers()) {
      const std::string sl = labels + ",server=\"" + escape_label(v.config.name) + "\"";
      w.family("bulwark_proxy_server_up", "gauge", "1 if the server takes traffic.");
      w.sample("bulwark_proxy_server_up", "", sl, v.server->up() && !v.draining ? 1 : 0);
      w.family("bulwark_proxy_server_active", "gauge", "Requests or connections in flight.");
      w.sample("bulwark_proxy_server_active", "", sl, v.server->active());
      w.family("bulwark_proxy_server_weight", "gauge", "Configured weight.");
      w.sample("bulwark_proxy_server_weight", "", sl, v.config.weight);
      prom_counters(w, "server", sl, v.server->counters().totals(), true);
    }
  }
  return w.str();
}

}  // namespace bulwark::proxy
