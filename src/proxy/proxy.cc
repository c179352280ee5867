#include "proxy/proxy.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "sys/system_clock.h"
#include "sys/tcp.h"

namespace bulwark::proxy {
namespace {

// Sockets are kept by address across reloads (freebind, like workers,
// changes only on restart).
std::string listen_key(const FrontendConfig& f) { return f.listen.to_string(); }

nlohmann::json fail(const std::string& message) { return {{"ok", false}, {"error", message}}; }

nlohmann::json status_json(const Status& st) {
  if (!st) return fail(st.error().message);
  return {{"ok", true}};
}

}  // namespace

Proxy::~Proxy() { stop(); }

Result<std::unique_ptr<Proxy>> Proxy::start(const ProxyConfig& config) {
  std::unique_ptr<Proxy> p(new Proxy());
  int workers = config.global.workers;
  if (workers == 0) workers = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  // A tcp session holds six descriptors (client, server, two pipes); each
  // worker keeps up to 256 cached pipes and its idle server connections.
  const long wanted = static_cast<long>(config.global.maxconn) * 6 + workers * 4096L + 1024;
  const long limit = raise_fd_limit(wanted);
  if (limit < wanted)
    spdlog::warn("open-file limit is {} (wanted {}): tcp sessions may fail before maxconn {}",
                 limit, wanted, config.global.maxconn);
  for (int i = 0; i < workers; ++i) p->workers_.push_back(std::make_unique<Worker>(i, p->shared_));
  for (auto& w : p->workers_) w->start();
  if (auto st = p->apply(config); !st) return st.error();
  p->checker_.start();
  if (!config.global.stats_listen.empty()) {
    if (auto st = p->start_stats(config.global.stats_listen); !st) return st.error();
  }
  if (!config.global.control_socket.empty()) {
    Proxy* self = p.get();
    if (auto st =
            p->control_.start(config.global.control_socket,
                              [self](const nlohmann::json& r) { return self->handle_control(r); });
        !st)
      return st.error();
  }
  spdlog::info("bulwark-proxy: {} worker(s), {} frontend(s), {} backend(s)", workers,
               config.frontends.size(), config.backends.size());
  return p;
}

Status Proxy::apply(const ProxyConfig& config) {
  std::lock_guard lock(mu_);
  const int workers = static_cast<int>(workers_.size());
  // 1. Sockets for new addresses; any failure undoes this step alone.
  std::map<std::string, std::vector<int>> opened;
  for (const auto& f : config.frontends) {
    const std::string key = listen_key(f);
    if (listen_fds_.count(key) || opened.count(key)) continue;
    // Every worker's socket shares the port with SO_REUSEPORT, which would
    // also let a second proxy share it unnoticed: first make sure nobody
    // listens there.
    if (auto st = ensure_port_free(f.listen, f.freebind); !st) {
      for (auto& [k, v] : opened)
        for (int x : v) close_fd(x);
      return make_error(Errc::kIo, "frontend " + f.name + ": " + st.error().message);
    }
    std::vector<int> fds;
    for (int i = 0; i < workers; ++i) {
      auto fd = listen_tcp(f.listen, ListenOptions{f.backlog, true, f.freebind});
      if (!fd) {
        for (int x : fds) close_fd(x);
        for (auto& [k, v] : opened)
          for (int x : v) close_fd(x);
        return make_error(Errc::kIo, "frontend " + f.name + ": " + fd.error().message);
      }
      fds.push_back(*fd);
    }
    opened[key] = std::move(fds);
  }
  listen_fds_.insert(opened.begin(), opened.end());
  // 2. Backends: kept by name with their servers' health and counters.
  std::map<std::string, std::shared_ptr<Backend>> backends;
  for (const auto& b : config.backends) {
    auto it = backends_.find(b.name);
    if (it != backends_.end()) {
      it->second->apply(b);
      backends[b.name] = it->second;
    } else {
      auto backend = std::make_shared<Backend>(b, workers);
      backend->set_slot_waker([this] {
        for (auto& w : workers_) w->wake();
      });
      backends[b.name] = backend;
    }
  }
  // 3. Frontends, keeping counters of those that stay.
  std::vector<std::shared_ptr<Frontend>> frontends;
  for (const auto& f : config.frontends) {
    std::shared_ptr<Counters> counters;
    std::shared_ptr<std::atomic<int>> current;
    for (const auto& old : frontends_) {
      if (old->config.name == f.name) {
        counters = old->counters;
        current = old->current;
      }
    }
    if (!counters) counters = std::make_shared<Counters>(workers);
    if (!current) current = std::make_shared<std::atomic<int>>(0);
    frontends.push_back(std::make_shared<Frontend>(
        f, backends.at(f.backend), listen_fds_.at(listen_key(f)), counters, current));
  }
  // 4. Hand them to the workers and wait until each has switched.
  std::vector<std::future<void>> switched;
  for (auto& w : workers_) switched.push_back(w->set_frontends(frontends));
  for (auto& s : switched) s.wait();
  // 5. Close the sockets no frontend uses any more.
  std::set<std::string> used;
  for (const auto& f : config.frontends) used.insert(listen_key(f));
  for (auto it = listen_fds_.begin(); it != listen_fds_.end();) {
    if (!used.count(it->first)) {
      for (int fd : it->second) close_fd(fd);
      it = listen_fds_.erase(it);
    } else {
      ++it;
    }
  }
  frontends_ = std::move(frontends);
  backends_ = std::move(backends);
  shared_.maxconn.store(config.global.maxconn);
  std::vector<std::shared_ptr<Backend>> checked;
  for (const auto& [name, b] : backends_) checked.push_back(b);
  checker_.set_backends(std::move(checked));
  if (!config_.path.empty()) {
    if (config.global.workers != config_.global.workers ||
        config.global.stats_listen != config_.global.stats_listen ||
        config.global.control_socket != config_.global.control_socket)
      spdlog::warn("reload: workers, stats and control_socket change only on restart");
  }
  config_ = config;
  return Ok{};
}

Status Proxy::reload(const ProxyConfig& config) {
  if (auto st = apply(config); !st) return st;
  spdlog::info("reloaded {}: {} frontend(s), {} backend(s)", config.path, config.frontends.size(),
               config.backends.size());
  return Ok{};
}

Status Proxy::reload_from_file() {
  std::string path;
  {
    std::lock_guard lock(mu_);
    path = config_.path;
  }
  auto config = load_proxy_config(path);
  if (!config) return config.error();
  return reload(*config);
}

Status Proxy::start_stats(const std::string& listen) {
  auto address = parse_socket_address(listen);
  if (!address) return address.error();
  stats_server_ = std::make_unique<httplib::Server>();
  stats_server_->Get("/stats", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_stats_json(stats_source()).dump(2) + "\n", "application/json");
  });
  stats_server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_prometheus(stats_source()), "text/plain; version=0.0.4");
  });
  stats_server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  if (!stats_server_->bind_to_port(address->ip().c_str(), address->port()))
    return make_error(Errc::kIo, "cannot listen on " + listen + " for stats");
  stats_thread_ = std::thread([this] { stats_server_->listen_after_bind(); });
  return Ok{};
}

StatsSource Proxy::stats_source() const {
  std::lock_guard lock(mu_);
  StatsSource s;
  s.frontends = frontends_;
  for (const auto& cfg : config_.backends) s.backends.push_back(backends_.at(cfg.name));
  return s;
}

std::shared_ptr<Backend> Proxy::backend(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = backends_.find(name);
  return it == backends_.end() ? nullptr : it->second;
}

nlohmann::json Proxy::handle_control(const nlohmann::json& r) {
  const std::string cmd = r.value("cmd", "");
  if (cmd == "show") return {{"ok", true}, {"stats", render_stats_json(stats_source())}};
  if (cmd == "reload") return status_json(reload_from_file());
  if (!r.contains("backend") || !r["backend"].is_string() || !r.contains("server") ||
      !r["server"].is_string())
    return fail(cmd.empty() ? "missing cmd" : "'" + cmd + "' needs backend and server (strings)");
  auto b = backend(r["backend"].get<std::string>());
  if (!b) return fail("no backend named '" + r["backend"].get<std::string>() + "'");
  const std::string server = r["server"].get<std::string>();
  if (cmd == "add-server") {
    ServerConfig sc;
    sc.name = server;
    if (!r.contains("address") || !r["address"].is_string())
      return fail("add-server needs address");
    auto address = parse_socket_address(r["address"].get<std::string>());
    if (!address) return fail(address.error().message);
    sc.address = *address;
    if (r.contains("weight") && !r["weight"].is_number_integer())
      return fail("weight must be an integer");
    if (r.contains("maxconn") && !r["maxconn"].is_number_integer())
      return fail("maxconn must be an integer");
    if (r.contains("backup") && !r["backup"].is_boolean())
      return fail("backup must be true or false");
    sc.weight = r.value("weight", 1);
    sc.maxconn = r.value("maxconn", 0);
    sc.backup = r.value("backup", false);
    auto st = b->add_server(sc);
    if (st)
      spdlog::info("backend {}: server {} added at {}", b->name(), server, sc.address.to_string());
    return status_json(st);
  }
  if (cmd == "remove-server") {
    auto st = b->remove_server(server);
    if (st) spdlog::info("backend {}: server {} removed", b->name(), server);
    return status_json(st);
  }
  if (cmd == "drain" || cmd == "ready") {
    auto st = b->set_draining(server, cmd == "drain");
    if (st)
      spdlog::info("backend {}: server {} {}", b->name(), server,
                   cmd == "drain" ? "draining" : "ready");
    return status_json(st);
  }
  if (cmd == "set-weight") {
    if (!r.contains("weight") || !r["weight"].is_number_integer())
      return fail("set-weight needs weight (integer)");
    return status_json(b->set_weight(server, r["weight"].get<int>()));
  }
  return fail("unknown cmd '" + cmd +
              "' (show, reload, add-server, remove-server, drain, ready, set-weight)");
}

void Proxy::stop() {
  if (stopped_) return;
  stopped_ = true;
  control_.stop();
  // Stop listening first, as a reload that drops every frontend would: a
  // client that connects now is refused at once instead of waiting in a
  // backlog that closes before anyone accepts from it.
  {
    std::lock_guard lock(mu_);
    std::vector<std::future<void>> released;
    for (auto& w : workers_) released.push_back(w->set_frontends({}));
    for (auto& r : released) r.wait();
    for (auto& [key, fds] : listen_fds_)
      for (int fd : fds) close_fd(fd);
    listen_fds_.clear();
  }
  for (auto& w : workers_) w->begin_stop();
  const int64_t deadline = mono_ms_now() + config_.global.grace_ms;
  while (mono_ms_now() < deadline) {
    int open = 0;
    for (auto& w : workers_) open += w->sessions();
    if (open == 0) break;
    sleep_ms(20);
  }
  for (auto& w : workers_) w->finish_stop();
  checker_.stop();
  if (stats_server_) {
    stats_server_->stop();
    if (stats_thread_.joinable()) stats_thread_.join();
  }
}

}  // namespace bulwark::proxy
