#include "agent/proxy_controller.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

#include "proxy/control_server.h"
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
      servers.push_back(DerivedServer{node, with_port(record.address, port), serving ? 1 : 0});
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

void ProxyController::sync(const ClusterState& state, const std::string& self,
                           const NodeStatusRecord& local) {
  {
    std::lock_guard lock(mu_);
    for (auto& [job, error] : done_) {
      in_flight_.erase(job.resource);
      if (error) {
        spdlog::warn("proxy {}: reload failed, retrying: {}", job.resource, *error);
        retry_at_ms_[job.resource] = clock_.mono_ms() + kRetryMs;
      } else {
        applied_[job.resource] = job.text;
      }
    }
    done_.clear();
  }
  if (!state.resource_config) return;
  const ResourceConfig& config = *state.resource_config;
  std::vector<Job> jobs;
  for (const auto& r : config.resources) {
    if (r.agent.agent_class != AgentClass::kProxy) continue;
    auto st = local.resources.find(r.name);
    if (st == local.resources.end() || st->second.state != InstanceState::kStarted) {
      // Not running here: once it runs again, it is told everything anew.
      applied_.erase(r.name);
      continue;
    }
    if (in_flight_.count(r.name) || clock_.mono_ms() < retry_at_ms_[r.name]) continue;
    auto text = render_cluster_proxy_config(r, config, runtime_dir_,
                                            proxy_inputs(r, config, state, self, local));
    if (!text) {
      spdlog::error("{}", text.error().message);
      continue;
    }
    if (applied_[r.name] == *text) continue;
    in_flight_.insert(r.name);
    jobs.push_back(Job{r.name, *text});
  }
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
    std::vector<std::pair<Job, std::optional<std::string>>> results;
    for (auto& job : jobs) {
      // Written whole, then renamed: the proxy never reads half a file.
      const std::string path = proxy_config_path(runtime_dir_, job.resource);
      std::ofstream(path + ".tmp", std::ios::trunc) << job.text;
      std::error_code ec;
      fs::rename(path + ".tmp", path, ec);
      std::optional<std::string> error;
      if (ec) {
        error = "cannot write " + path + ": " + ec.message();
      } else {
        auto answer = proxy::control_request(proxy_socket_path(runtime_dir_, job.resource),
                                             {{"cmd", "reload"}});
        if (!answer) {
          error = answer.error().message;
        } else if (!answer->value("ok", false)) {
          error = answer->value("error", answer->dump());
        }
      }
      results.emplace_back(std::move(job), std::move(error));
    }
    lock.lock();
    for (auto& r : results) done_.push_back(std::move(r));
  }
}

}  // namespace bulwark
