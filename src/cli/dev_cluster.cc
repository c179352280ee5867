#include "cli/dev_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/api_client.h"
#include "cli/cluster_init.h"
#include "cli/exit_codes.h"
#include "security/crypto.h"
#include "sys/process.h"
#include "sys/process_group.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kClaimDir = "/tmp/bulwark-dev-claims";
constexpr int kStopGraceMs = 15000;

std::string abs_dir(const std::string& d) {
  std::error_code ec;
  const auto p = fs::absolute(d.empty() ? "." : d, ec);
  return ec ? d : p.lexically_normal().string();
}
std::string config_path(const std::string& dir) { return dir + "/bulwark.yaml"; }
std::string node_dir(const Config& c, const std::string& n) { return c.node_data_dir(n); }
std::string pid_file(const Config& c, const std::string& n) {
  return node_dir(c, n) + "/bulwarkd.pid";
}

int fail(int code, const std::string& message) {
  std::cerr << "bulwark dev: " << message << "\n";
  return code;
}

// The pid recorded for a node, if that process is still this node's
// bulwarkd: after a reboot or pid reuse the number may name a stranger's
// process group, which must never be signalled.
pid_t read_pid(const Config& c, const std::string& n) {
  std::ifstream in(pid_file(c, n));
  long pid = 0;
  in >> pid;
  if (pid <= 0) return 0;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  const bool ours = cmdline.find("bulwarkd") != std::string::npos &&
                    cmdline.find(" " + c.path + " ") != std::string::npos &&
                    cmdline.find("--node " + n + " ") != std::string::npos;
  // A zombie has an empty cmdline; its group may still hold live children
  // (a daemon killed alone leaves its etcd member for a moment).
  return ours || (cmdline.empty() && tree_alive({static_cast<pid_t>(pid), ""}))
             ? static_cast<pid_t>(pid)
             : 0;
}

// Everything that belongs to a node: its daemon's session, and whatever
// carries its marker (resources adopted by a later daemon of the node run
// in an earlier daemon's session).
ProcessTree tree_of(const Config& c, const std::string& n) {
  return ProcessTree{read_pid(c, n), std::string(kDevNodeVariable) + "=" + node_dir(c, n)};
}

// The node's daemon runs (whatever it left behind from an earlier life).
bool node_running(const Config& c, const std::string& n) {
  const pid_t pid = read_pid(c, n);
  return pid > 0 && process_alive(pid);
}

std::string bulwarkd_path() {
  if (const char* p = std::getenv("BULWARK_BULWARKD")) return p;
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "bulwarkd").string();
}

bool port_free(const std::string& address, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

// Claims 127.0.K.0/24 for `dir` with an O_EXCL file; a claim whose cluster
// directory is gone is stale and taken over.
Result<int> claim_subnet(const std::string& dir, int wanted, int nodes) {
  std::error_code ec;
  fs::create_directories(kClaimDir, ec);
  ::chmod(kClaimDir, 01777);
  for (int k = wanted ? wanted : 1; k <= (wanted ? wanted : 250); ++k) {
    const std::string claim = std::string(kClaimDir) + "/127.0." + std::to_string(k);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int fd = ::open(claim.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd >= 0) {
        bool free = true;
        for (int i = 1; i <= nodes && free; ++i) {
          free = port_free("127.0." + std::to_string(k) + "." + std::to_string(i), 7400);
        }
        if (!free) {
          ::close(fd);
          ::unlink(claim.c_str());
          break;
        }
        const std::string content = dir + "\n";
        (void)::write(fd, content.data(), content.size());
        ::close(fd);
        return k;
      }
      std::ifstream in(claim);
      std::string owner;
      std::getline(in, owner);
      if (owner == dir) return k;
      if (!owner.empty() && fs::exists(config_path(owner))) break;  // taken
      ::unlink(claim.c_str());  // stale: its cluster directory is gone
    }
    if (wanted) break;
  }
  return make_error(Errc::kUnavailable, wanted
                                            ? "127.0." + std::to_string(wanted) + ".0/24 is taken"
                                            : "no free 127.0.K.0/24 for a dev cluster");
}

void release_subnet(const Config& c) {
  if (c.nodes.empty()) return;
  const std::string a = c.nodes.front().address;
  const auto last_dot = a.rfind('.');
  const std::string claim = std::string(kClaimDir) + "/" + a.substr(0, last_dot);
  std::ifstream in(claim);
  std::string owner;
  std::getline(in, owner);
  if (owner == fs::path(c.path).parent_path().string()) ::unlink(claim.c_str());
}

Result<pid_t> start_node(const Config& c, const std::string& name) {
  std::error_code ec;
  fs::create_directories(node_dir(c, name), ec);
  SpawnOptions o;
  o.argv = {bulwarkd_path(), "--config", c.path, "--node", name};
  o.env = current_environment({kDevNodeVariable});
  o.env.push_back(std::string(kDevNodeVariable) + "=" + node_dir(c, name));
  o.log_file = node_dir(c, name) + "/bulwarkd.log";
  o.new_session = true;  // its own session: `dev kill` reaches everything it starts
  auto pid = spawn_process(o);
  if (!pid) return pid.error();
  std::ofstream(pid_file(c, name)) << *pid << "\n";
  return *pid;
}

std::string endpoints_of(const Config& c) {
  std::string eps;
  for (const auto& n : c.nodes)
    eps += (eps.empty() ? "" : ",") + std::string("https://") + n.address + ":" +
           std::to_string(n.ports.api);
  return eps;
}

ApiClient client_for(const Config& c) {
  ApiClientOptions o;
  o.endpoints = split_list(endpoints_of(c));
  o.ca_file = c.ca_file();
  if (auto t = read_secret_file(c.token_file)) o.token = *t;
  o.timeout_ms = 30000;
  return ApiClient(o);
}

void write_env(const Config& c) {
  const std::string dir = fs::path(c.path).parent_path().string();
  std::ofstream out(dir + "/env", std::ios::trunc);
  out << "export BULWARK_ENDPOINT=" << endpoints_of(c) << "\n"
      << "export BULWARK_TOKEN_FILE=" << c.token_file << "\n"
      << "export BULWARK_CA_FILE=" << c.ca_file() << "\n"
      << "export BULWARK_DEV_DIR=" << dir << "\n";
}

// The last error line of a node's log, for a node that exited.
std::string last_error(const Config& c, const std::string& n) {
  std::ifstream in(node_dir(c, n) + "/bulwarkd.log");
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.find(" error ") != std::string::npos || line.find("error]") != std::string::npos)
      last = line;
  }
  return last.empty() ? "see " + node_dir(c, n) + "/bulwarkd.log" : last;
}

// Waits until a node just started (its daemon `pid`) answers its API (any
// HTTP answer), or its daemon exits: then what it said.
Status wait_node_answers(const Config& c, const std::string& n, pid_t pid, int timeout_ms) {
  SystemClock clock;
  const NodeConfig* node = c.find_node(n);
  ApiClientOptions o;
  o.endpoints = {"https://" + node->address + ":" + std::to_string(node->ports.api)};
  o.ca_file = c.ca_file();
  o.timeout_ms = 2000;
  const ApiClient api(o);
  const int64_t deadline = clock.mono_ms() + timeout_ms;
  while (clock.mono_ms() < deadline) {
    if (!process_alive(pid))
      return make_error(Errc::kIo, "node " + n + " exited: " + last_error(c, n));
    if (api.request("GET", "/v1/status")) return Ok{};
    clock.sleep_ms(100);
  }
  return make_error(Errc::kTimeout, "node " + n + " does not answer after " +
                                        std::to_string(timeout_ms / 1000) + " s; see " +
                                        node_dir(c, n) + "/bulwarkd.log");
}

// Waits until some running node reports a coordinator that it can reach.
Result<json> wait_for_coordinator(const Config& c, int timeout_ms) {
  SystemClock clock;
  const int64_t deadline = clock.mono_ms() + timeout_ms;
  const ApiClient api = client_for(c);
  std::string last = "no node answered";
  while (clock.mono_ms() < deadline) {
    auto r = api.request("GET", "/v1/status");
    if (r && r->status == 200 && r->body.value("quorate", false) &&
        !r->body["coordinator"].is_null()) {
      const std::string coord = r->body["coordinator"];
      for (const auto& n : r->body["nodes"]) {
        if (n.value("name", "") == coord && n.value("online", false)) return r->body;
      }
    }
    if (!r) last = r.error().message;
    clock.sleep_ms(100);
  }
  return make_error(Errc::kTimeout, "the cluster has no coordinator after " +
                                        std::to_string(timeout_ms / 1000) + " s (" + last +
                                        "); see the logs in " + c.store.data_dir + "/NODE/");
}

Result<Config> load_dev(const DevOptions& o) {
  const std::string dir = abs_dir(o.dir);
  if (!fs::exists(config_path(dir)))
    return make_error(Errc::kInvalid,
                      "no dev cluster in " + dir + " (run: bulwark dev up --dir " + o.dir + ")");
  return load_config(config_path(dir));
}

}  // namespace

int dev_up(const DevOptions& o) {
  if (o.nodes < 1 || o.nodes > 16) return fail(kCliBadInput, "--nodes must be between 1 and 16");
  const std::string dir = abs_dir(o.dir);
  Config config;
  if (fs::exists(config_path(dir))) {
    auto c = load_config(config_path(dir));
    if (!c) return fail(kCliBadInput, c.error().message);
    config = *c;
    for (const auto& n : config.nodes) {
      if (node_running(config, n.name))
        return fail(kCliBadInput, "node " + n.name + " of " + dir + " is already running");
    }
    std::cout << "restarting the dev cluster in " << dir << "\n";
  } else {
    auto k = claim_subnet(dir, o.subnet, o.nodes);
    if (!k) return fail(kCliFailed, k.error().message);
    InitOptions io;
    io.dir = dir;
    io.cluster_name = "dev" + std::to_string(*k);
    io.heartbeat_ms = o.heartbeat_ms;
    io.lease_ms = o.lease_ms;
    for (int i = 1; i <= o.nodes; ++i)
      io.nodes.emplace_back("n" + std::to_string(i),
                            "127.0." + std::to_string(*k) + "." + std::to_string(i));
    auto c = init_cluster(io);
    if (!c) return fail(exit_code_for(c.error().code), c.error().message);
    config = *c;
    // The dev fence agent: power-kills a node's whole process tree, so a
    // lost node's singleton moves only once nothing of the node runs.
    if (!o.no_fencing) {
      std::error_code ec;
      const auto self = fs::read_symlink("/proc/self/exe", ec);
      config.fencing.command = {self.string(), "dev", "fence", "--dir", dir};
      config.fencing.timeout_ms = 10000;
    }
    if (!o.ocf_root.empty()) config.ocf_root = abs_dir(o.ocf_root);
    std::ofstream(config.path, std::ios::trunc) << render_config(config);
  }
  // On any failure below, stop what was started: a failed `dev up` leaves
  // no process behind.
  const auto stop_started = [&] {
    for (const auto& n : config.nodes) signal_tree(tree_of(config, n.name), SIGTERM);
    for (const auto& n : config.nodes) {
      const ProcessTree tree = tree_of(config, n.name);
      if (!wait_tree_gone(tree, kStopGraceMs)) signal_tree(tree, SIGKILL);
    }
  };
  for (const auto& n : config.nodes) {
    if (auto st = start_node(config, n.name); !st) {
      stop_started();
      return fail(kCliFailed, st.error().message);
    }
  }
  write_env(config);
  auto status = wait_for_coordinator(config, o.timeout_ms);
  if (!status) {
    stop_started();
    return fail(kCliFailed, status.error().message);
  }
  // A node that exited (a daemon that refused to start) is not "up".
  std::string exited;
  for (const auto& n : config.nodes) {
    if (!node_running(config, n.name))
      exited += "\n  node " + n.name + ": " + last_error(config, n.name);
  }
  std::cout << "dev cluster " << config.cluster_name << " is up: " << config.nodes.size()
            << " nodes, coordinator " << (*status)["coordinator"].get<std::string>() << "\n"
            << "  source " << dir
            << "/env   # sets BULWARK_ENDPOINT, BULWARK_TOKEN_FILE, BULWARK_CA_FILE\n";
  if (!exited.empty()) return fail(kCliFailed, "not every node runs:" + exited);
  return kCliOk;
}

int dev_down(const DevOptions& o) {
  auto c = load_dev(o);
  if (!c) return fail(kCliBadInput, c.error().message);
  for (const auto& n : c->nodes) {
    const ProcessTree tree = tree_of(*c, n.name);
    if (!tree_alive(tree)) continue;
    signal_tree(tree, SIGCONT);  // a paused node must be able to act on SIGTERM
    // The daemon first: it stops its resources in order; a resource that
    // outlived an earlier daemon of the node gets its own SIGTERM.
    if (const pid_t pid = read_pid(*c, n.name); pid > 0 && process_alive(pid)) {
      ::kill(pid, SIGTERM);
    } else {
      signal_tree(tree, SIGTERM);
    }
  }
  // A daemon in maintenance leaves its resources running when it stops:
  // once it is gone, what is left of the node gets its own SIGTERM.
  SystemClock clock;
  const int64_t deadline = clock.mono_ms() + kStopGraceMs;
  for (const auto& n : c->nodes) {
    const pid_t pid = read_pid(*c, n.name);
    while (pid > 0 && process_alive(pid) && clock.mono_ms() < deadline) clock.sleep_ms(20);
    signal_tree(tree_of(*c, n.name), SIGTERM);
  }
  bool clean = true;
  for (const auto& n : c->nodes) {
    const ProcessTree tree = tree_of(*c, n.name);
    if (wait_tree_gone(tree, static_cast<int>(std::max<int64_t>(deadline - clock.mono_ms(), 0))))
      continue;
    std::cerr << "bulwark dev: node " << n.name << " did not stop in time; killing it\n";
    signal_tree(tree, SIGKILL);
    clean = wait_tree_gone(tree, 5000) && clean;
  }
  if (o.purge) {
    release_subnet(*c);
    std::error_code ec;
    fs::remove_all(abs_dir(o.dir), ec);
  }
  std::cout << "dev cluster " << c->cluster_name << " stopped" << (o.purge ? " and removed" : "")
            << "\n";
  return clean ? kCliOk : kCliFailed;
}

int dev_ls(const DevOptions& o) {
  auto c = load_dev(o);
  if (!c) return fail(kCliBadInput, c.error().message);
  json out = json::array();
  for (const auto& n : c->nodes) {
    const pid_t pid = read_pid(*c, n.name);
    out.push_back({{"name", n.name},
                   {"pid", pid > 0 ? json(pid) : json(nullptr)},
                   {"endpoint", "https://" + n.address + ":" + std::to_string(n.ports.api)},
                   {"address", n.address},
                   {"running", node_running(*c, n.name)},
                   {"log", node_dir(*c, n.name) + "/bulwarkd.log"}});
  }
  if (o.json) {
    std::cout << json{{"cluster", c->cluster_name}, {"nodes", out}}.dump(2) << "\n";
    return kCliOk;
  }
  std::printf("%-6s %-8s %-8s %s\n", "NODE", "PID", "RUNNING", "ENDPOINT");
  for (const auto& n : out) {
    std::printf("%-6s %-8s %-8s %s\n", n["name"].get<std::string>().c_str(),
                n["pid"].is_null() ? "-" : std::to_string(n["pid"].get<int>()).c_str(),
                n["running"].get<bool>() ? "yes" : "no", n["endpoint"].get<std::string>().c_str());
  }
  return kCliOk;
}

// What a power loss takes with it: the node's runtime directory (its /run:
// pid files, OCF state files, loopback VIP markers), which a real machine
// loses with its memory and bulwarkd empties only when the boot id changes.
static void forget_runtime_state(const Config& c, const std::string& node) {
  std::error_code ec;
  fs::remove_all(c.node_data_dir(node) + "/run", ec);
}

int dev_kill(const DevOptions& o) {
  auto c = load_dev(o);
  if (!c) return fail(kCliBadInput, c.error().message);
  if (!c->find_node(o.node)) return fail(kCliBadInput, "no node '" + o.node + "' in " + c->path);
  int sig = 0;
  if (o.signal == "KILL")
    sig = SIGKILL;
  else if (o.signal == "STOP")
    sig = SIGSTOP;
  else if (o.signal == "CONT")
    sig = SIGCONT;
  else if (o.signal == "TERM")
    sig = SIGTERM;
  else
    return fail(kCliBadInput, "--signal must be KILL, STOP, CONT or TERM");
  const pid_t pid = read_pid(*c, o.node);
  const ProcessTree tree = tree_of(*c, o.node);
  if (!tree_alive(tree)) return fail(kCliBadInput, "node " + o.node + " is not running");
  // TERM asks the daemon to shut down in order (it stops its resources);
  // the others act on the node's whole process tree, like a power switch.
  if (sig == SIGTERM) {
    if (pid <= 0) return fail(kCliBadInput, "node " + o.node + " has no daemon running");
    ::kill(pid, sig);
  } else {
    signal_tree(tree, sig);
  }
  if (sig == SIGKILL && !wait_tree_gone(tree, 5000))
    return fail(kCliFailed, "node " + o.node + " still has processes after SIGKILL");
  if (sig == SIGKILL) forget_runtime_state(*c, o.node);
  return kCliOk;
}

int dev_fence(const DevOptions& o) {
  // The fence-agents interface: key=value lines on stdin.
  std::map<std::string, std::string> opts;
  std::string line;
  while (std::getline(std::cin, line)) {
    const auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    opts[line.substr(0, eq)] = line.substr(eq + 1);
  }
  const std::string action = opts.count("action") ? opts["action"] : "reboot";
  if (action == "metadata") {
    std::cout << "<?xml version=\"1.0\" ?>\n<resource-agent name=\"bulwark-dev-fence\" "
                 "shortdesc=\"Kills a bulwark dev node's whole process tree\">\n"
                 "<parameters><parameter name=\"plug\" required=\"1\"><content "
                 "type=\"string\"/></parameter></parameters>\n<actions><action name=\"off\"/>"
                 "<action name=\"reboot\"/><action name=\"on\"/><action name=\"status\"/>"
                 "<action name=\"list\"/><action name=\"monitor\"/><action name=\"metadata\"/>"
                 "</actions>\n</resource-agent>\n";
    return kCliOk;
  }
  auto c = load_dev(o);
  if (!c) return fail(kCliBadInput, c.error().message);
  if (action == "list") {
    for (const auto& n : c->nodes) std::cout << n.name << ",\n";
    return kCliOk;
  }
  if (action == "monitor") return kCliOk;
  const std::string node = opts.count("plug") ? opts["plug"] : opts["port"];
  if (!c->find_node(node)) return fail(kCliBadInput, "no node '" + node + "' in " + c->path);
  const ProcessTree tree = tree_of(*c, node);
  if (action == "status") {
    const bool on = tree_alive(tree);
    std::cout << "Status: " << (on ? "ON" : "OFF") << "\n";
    return on ? 0 : 2;  // fence-agents: 0 on, 2 off
  }
  if (action == "on") return start_node(*c, node) ? kCliOk : kCliFailed;
  if (action != "off" && action != "reboot")
    return fail(kCliBadInput, "unknown action '" + action + "'");
  signal_tree(tree, SIGKILL);
  if (!wait_tree_gone(tree, 5000))
    return fail(kCliFailed, "node " + node + " still has processes after SIGKILL");
  forget_runtime_state(*c, node);
  std::cerr << "bulwark dev fence: node " << node << " is off\n";
  if (action == "reboot") {
    if (auto st = start_node(*c, node); !st) return fail(kCliFailed, st.error().message);
  }
  return kCliOk;
}

int dev_start(const DevOptions& o) {
  auto c = load_dev(o);
  if (!c) return fail(kCliBadInput, c.error().message);
  if (!c->find_node(o.node)) return fail(kCliBadInput, "no node '" + o.node + "' in " + c->path);
  if (node_running(*c, o.node)) return fail(kCliBadInput, "node " + o.node + " is already running");
  auto pid = start_node(*c, o.node);
  if (!pid) return fail(kCliFailed, pid.error().message);
  if (auto st = wait_node_answers(*c, o.node, *pid, o.timeout_ms); !st)
    return fail(kCliFailed, st.error().message);
  return kCliOk;
}

Status dev_forget_node(const std::string& dir, const std::string& node) {
  auto c = load_config(config_path(abs_dir(dir)));
  if (!c) return c.error();
  if (!c->find_node(node)) return Ok{};
  // The removed node's daemon stops its resources and exits: nothing of it
  // may outlive its place in the configuration (dev down would not see it).
  const ProcessTree tree = tree_of(*c, node);
  if (!wait_tree_gone(tree, kStopGraceMs)) {
    signal_tree(tree, SIGKILL);
    wait_tree_gone(tree, 5000);
  }
  std::erase_if(c->nodes, [&](const NodeConfig& n) { return n.name == node; });
  std::ofstream(c->path, std::ios::trunc) << render_config(*c);
  write_env(*c);
  std::cout << "node " << node << " left the dev cluster in " << abs_dir(dir)
            << " (its data stays in " << node_dir(*c, node) << ")\n";
  return Ok{};
}

int dev_add(const DevOptions& o) {
  auto c = load_dev(o);
  if (!c) return fail(kCliBadInput, c.error().message);
  Config config = *c;
  const std::string prefix =
      config.nodes.front().address.substr(0, config.nodes.front().address.rfind('.') + 1);
  int index = 1;
  while (config.find_node("n" + std::to_string(index))) ++index;
  const std::string name = o.node.empty() ? "n" + std::to_string(index) : o.node;
  if (config.find_node(name))
    return fail(kCliBadInput, "node " + name + " is already in " + config.path);
  int host = 1;
  for (bool used = true; used; ++host) {
    used = false;
    for (const auto& n : config.nodes) used = used || n.address == prefix + std::to_string(host);
    if (!used) break;
  }
  const std::string address = prefix + std::to_string(host);
  // A name used before (then removed) is a new node: the old one's data
  // must not be taken for its own.
  {
    std::error_code ec;
    fs::remove_all(node_dir(config, name), ec);
  }
  if (auto st = issue_certificate(config, name, address); !st)
    return fail(kCliFailed, st.error().message);
  // Ask the cluster first: only a node the cluster knows may start.
  const ApiClient api = client_for(config);
  auto r = api.request("POST", "/v1/nodes", json{{"name", name}, {"address", address}});
  if (!r) return fail(kCliFailed, r.error().message);
  if (r->status != 200)
    return fail(r->status == 503 ? kCliNoQuorum : kCliFailed,
                "node add refused: " + r->body.dump());
  NodeConfig nc;
  nc.name = name;
  nc.address = address;
  nc.ports = config.default_ports;
  config.nodes.push_back(nc);
  std::ofstream(config.path, std::ios::trunc) << render_config(config);
  if (auto st = start_node(config, name); !st) return fail(kCliFailed, st.error().message);
  write_env(config);
  std::cout << "node " << name << " (" << address << ") added and started\n";
  return kCliOk;
}

}  // namespace bulwark
