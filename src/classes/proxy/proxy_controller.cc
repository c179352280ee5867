#include "classes/proxy/proxy_controller.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "proxy_control/control_socket.h"
#include "sys/socket_address.h"

namespace bulwark {
namespace fs = std::filesystem;

namespace {

// A failed reload (the proxy still starting, or refusing) is tried again
// this much later.
constexpr int64_t kRetryMs = 200;

// The state of `resource` on `node`: this node's own from `local`.
const InstanceStatus* status_of(const ClusterState& state, const std::string& self,
                                const NodeStatusRecord& local, const std::string& node,
                                const std::string& resource) {
  const NodeStatusRecord* rec = &local;
  if (node != self) {
    auto it = state.statuses.find(node);
    if (it == state.statuses.end()) return nullptr;
    rec = &it->second;
  }
  auto r = rec->resources.find(resource);
  return r == rec->resources.end() ? nullptr : &r->second;
}

std::string with_port(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// The address part of a frontend's `listen`, empty if it does not parse.
std::string listen_ip(const YAML::Node& frontend) {
  if (!frontend["listen"] || !frontend["listen"].IsScalar()) return "";
  auto address = parse_socket_address(frontend["listen"].Scalar());
  return address ? address->ip() : "";
}

}  // namespace

std::string proxy_config_path(const std::string& runtime_dir, const std::string& resource) {
  return runtime_dir + "/" + resource + ".proxy.yaml";
}

std::string proxy_socket_path(const std::string& runtime_dir, const std::string& resource) {
  return runtime_dir + "/" + resource + ".proxy.sock";
}

ProxyInputs proxy_inputs(const ResourceSpec& proxy, const ResourceConfig& config,
                         const ClusterState& state, const std::string& self,
                         const NodeStatusRecord& local) {
  ProxyInputs in;
  const YAML::Node section = YAML::Load(proxy.agent.proxy);
  for (const auto& b : section["backends"]) {
    const YAML::Node from = b["servers_from"];
    if (!from) continue;
    const std::string resource = from["resource"].as<std::string>("");
    const int port = from["port"].as<int>(0);
    auto& servers = in.servers[b["name"].as<std::string>("")];
    for (const auto& [node, record] : state.nodes) {
      const InstanceStatus* st = status_of(state, self, local, node, resource);
      if (!st) continue;
      const bool serving =
          st->state == InstanceState::kStarted || st->state == InstanceState::kPromoted;
      if (!serving && st->state != InstanceState::kStopping) continue;
      // An announced stop: no new traffic from now, and drained before it.
      const bool leaving = st->notify.pending == "stop";
      if (leaving) in.drains.insert(ServerDrain{resource, node, st->notify.pending_seq});
      servers.push_back(
          DerivedServer{node, with_port(record.address, port), serving && !leaving ? 1 : 0});
    }
  }
  for (const auto& r : config.resources) {
    if (r.agent.agent_class != AgentClass::kVip || !r.agent.vip.loopback) continue;
    const InstanceStatus* st = status_of(state, self, local, self, r.name);
    if (st && st->state == InstanceState::kStarted)
      in.held_loopback_vips.insert(r.agent.vip.address);
  }
  return in;
}

Result<std::string> render_cluster_proxy_config(const ResourceSpec& proxy,
                                                const ResourceConfig& config,
                                                const std::string& runtime_dir,
                                                const ProxyInputs& inputs) {
  try {
    YAML::Node section = YAML::Clone(YAML::Load(proxy.agent.proxy));
    section["global"]["control_socket"] = proxy_socket_path(runtime_dir, proxy.name);
    for (YAML::Node b : section["backends"]) {
      if (!b["servers_from"]) continue;
      b.remove("servers_from");
      YAML::Node servers(YAML::NodeType::Sequence);
      auto it = inputs.servers.find(b["name"].as<std::string>(""));
      for (const auto& s : it == inputs.servers.end() ? std::vector<DerivedServer>{} : it->second) {
        YAML::Node server;
        server["name"] = s.name;
        server["address"] = s.address;
        server["weight"] = s.weight;
        servers.push_back(server);
      }
      b["servers"] = servers;
    }
    std::set<std::string> loopback_vips;
    std::set<std::string> vips;
    for (const auto& r : config.resources) {
      if (r.agent.agent_class != AgentClass::kVip) continue;
      (r.agent.vip.loopback ? loopback_vips : vips).insert(r.agent.vip.address);
    }
    YAML::Node frontends(YAML::NodeType::Sequence);
    for (YAML::Node f : section["frontends"]) {
      const std::string ip = listen_ip(f);
      if (loopback_vips.count(ip) && !inputs.held_loopback_vips.count(ip)) continue;
      if (vips.count(ip)) f["freebind"] = true;
      frontends.push_back(f);
    }
    section["frontends"] = frontends;
    YAML::Emitter out;
    out << section;
    return std::string(out.c_str()) + "\n";
  } catch (const YAML::Exception& e) {
    return make_error(Errc::kInvalid, "proxy " + proxy.name + ": " + e.what());
  }
}

ProxyController::ProxyController(const Clock& clock, std::string runtime_dir)
    : clock_(clock), runtime_dir_(std::move(runtime_dir)) {
  worker_ = std::thread([this] { run_worker(); });
}

ProxyController::~ProxyController() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

std::vector<ServerDrain> ProxyController::take_drained() {
  std::vector<ServerDrain> out;
  out.swap(drained_);
  return out;
}

void ProxyController::on_result(const JobResult& r) {
  const std::string& proxy = r.job.resource;
  if (r.job.show) {
    showing_.erase(proxy);
    if (r.error) return;  // asked again at the next sync
    // Servers of this proxy with nothing in flight any more.
    const nlohmann::json stats = r.answer.value("stats", nlohmann::json::object());
    for (auto& [drain, wait] : drains_) {
      if (!wait.proxies.count(proxy)) continue;
      bool idle = true;
      for (const auto& b : stats.value("backends", nlohmann::json::array())) {
        for (const auto& server : b.value("servers", nlohmann::json::array())) {
          if (server.value("name", "") == drain.node && server.value("active", 0) > 0) idle = false;
        }
      }
      if (!idle) continue;
      wait.proxies.erase(proxy);
      wait.idle.insert(proxy);
    }
    return;
  }
  in_flight_.erase(proxy);
  if (r.error) {
    spdlog::warn("proxy {}: reload failed, retrying: {}", proxy, *r.error);
    retry_at_ms_[proxy] = clock_.mono_ms() + kRetryMs;
  } else {
    applied_[proxy] = r.job.text;
  }
}

void ProxyController::follow_drains(const std::string& proxy, const ProxyInputs& inputs,
                                    const ResourceConfig& config, bool current,
                                    std::vector<Job>& jobs) {
  const int64_t now = clock_.mono_ms();
  for (const ServerDrain& d : inputs.drains) {
    auto [it, added] = drains_.try_emplace(d);
    if (added) {
      const ResourceSpec* source = config.find(d.resource);
      it->second.deadline_ms = now + (source ? source->notify_timeout_ms : 0);
    }
    // Once a proxy showed it idle, it is not asked again: being asked on
    // every sync kept each drain waiting until its deadline.
    if (!it->second.acknowledged && !it->second.idle.count(proxy)) it->second.proxies.insert(proxy);
  }
  // Once the proxy runs the weight-0 configuration, ask what is in flight.
  const bool waited_on = std::any_of(drains_.begin(), drains_.end(), [&](const auto& e) {
    return e.second.proxies.count(proxy) != 0;
  });
  if (waited_on && current && !showing_.count(proxy)) {
    showing_.insert(proxy);
    jobs.push_back(Job{true, proxy, ""});
  }
}

void ProxyController::sync(const ClusterState& state, const std::string& self,
                           const NodeStatusRecord& local) {
  bool answered = false;
  {
    std::lock_guard lock(mu_);
    answered = !done_.empty();
    for (const auto& r : done_) on_result(r);
    done_.clear();
  }
  // Called on every turn of the agent's loop: with the same store state, the
  // same local status and nothing under way or due, the result is the same.
  std::string inputs_key = std::to_string(state.revision) + Schema::encode_status(local);
  if (settled_ && !answered && inputs_key == inputs_key_) return;
  inputs_key_ = std::move(inputs_key);
  settled_ = false;
  if (!state.resource_config) return;
  const ResourceConfig& config = *state.resource_config;
  std::vector<Job> jobs;
  std::set<ServerDrain> announced;
  for (const auto& r : config.resources) {
    if (r.agent.agent_class != AgentClass::kProxy) continue;
    auto st = local.resources.find(r.name);
    if (st == local.resources.end() || st->second.state != InstanceState::kStarted) {
      // Not running here: once it runs again, it is told everything anew.
      applied_.erase(r.name);
      continue;
    }
    const ProxyInputs inputs = proxy_inputs(r, config, state, self, local);
    announced.insert(inputs.drains.begin(), inputs.drains.end());
    auto text = render_cluster_proxy_config(r, config, runtime_dir_, inputs);
    if (!text) {
      spdlog::error("{}", text.error().message);
      continue;
    }
    const bool current = applied_[r.name] == *text;
    if (!current && !in_flight_.count(r.name) && clock_.mono_ms() >= retry_at_ms_[r.name]) {
      in_flight_.insert(r.name);
      jobs.push_back(Job{false, r.name, *text});
    }
    follow_drains(r.name, inputs, config, current, jobs);
  }
  // A drain is over when no proxy here sends the server anything (or its
  // time is up); it is forgotten once its stop is no longer announced.
  for (auto it = drains_.begin(); it != drains_.end();) {
    if (!announced.count(it->first)) {
      it = drains_.erase(it);
      continue;
    }
    DrainWait& wait = it->second;
    if (!wait.acknowledged && (wait.proxies.empty() || clock_.mono_ms() >= wait.deadline_ms)) {
      if (!wait.proxies.empty())
        spdlog::warn("proxy: {} on {} still has requests in flight; letting it stop",
                     it->first.resource, it->first.node);
      wait.acknowledged = true;
      wait.proxies.clear();
      drained_.push_back(it->first);
    }
    ++it;
  }
  // Settled: every running proxy runs what it should, and no reload, stats
  // request, retry or drain is pending.
  settled_ = jobs.empty() && in_flight_.empty() && showing_.empty() && drains_.empty() &&
             std::all_of(retry_at_ms_.begin(), retry_at_ms_.end(),
                         [&](const auto& e) { return e.second <= clock_.mono_ms(); });
  if (jobs.empty()) return;
  {
    std::lock_guard lock(mu_);
    for (auto& j : jobs) jobs_.push_back(std::move(j));
  }
  cv_.notify_one();
}

void ProxyController::run_worker() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    std::vector<Job> jobs;
    jobs.swap(jobs_);
    lock.unlock();
    std::vector<JobResult> results;
    for (auto& job : jobs) {
      JobResult r{std::move(job), std::nullopt, nullptr};
      const std::string socket = proxy_socket_path(runtime_dir_, r.job.resource);
      if (!r.job.show) {
        // Written whole, then renamed: the proxy never reads half a file.
        const std::string path = proxy_config_path(runtime_dir_, r.job.resource);
        std::ofstream(path + ".tmp", std::ios::trunc) << r.job.text;
        std::error_code ec;
        fs::rename(path + ".tmp", path, ec);
        if (ec) r.error = "cannot write " + path + ": " + ec.message();
      }
      if (!r.error) {
        auto answer = proxy::control_request(socket, {{"cmd", r.job.show ? "show" : "reload"}});
        if (!answer) {
          r.error = answer.error().message;
        } else if (!answer->value("ok", false)) {
          r.error = answer->value("error", answer->dump());
        } else {
          r.answer = std::move(*answer);
        }
      }
      results.push_back(std::move(r));
    }
    lock.lock();
    for (auto& r : results) done_.push_back(std::move(r));
  }
}

}  // namespace bulwark
