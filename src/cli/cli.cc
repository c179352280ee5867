#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/api_client.h"
#include "cli/cli_support.h"
#include "cli/cluster_init.h"
#include "cli/dev_cluster.h"
#include "cli/exit_codes.h"
#include "cli/resource_commands.h"
#include "cli/status_view.h"
#include "core/config.h"
#include "core/resource_config.h"
#include "core/yaml_section.h"
#include "proxy/proxy_config.h"
#include "security/crypto.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

// Sends a write and prints its outcome; the exit code follows the error kind.
int do_write(const GlobalOptions& g, const std::string& method, const std::string& path,
             const json& body, const std::string& done) {
  const Call c = call_api(g, method, path, body);
  if (!c.ok()) return c.rc;
  if (g.json) {
    std::cout << c.body.dump() << "\n";
  } else {
    std::cout << done << " (revision " << c.body.value("revision", 0) << ")\n";
  }
  return kCliOk;
}

// Reads `path` and prints it, as JSON with --json or else through `render`.
int do_read(const GlobalOptions& g, const std::string& path,
            std::string (*render)(const json& body)) {
  const Call c = call_api(g, "GET", path);
  if (c.ok()) std::cout << (g.json ? c.body.dump(2) + "\n" : render(c.body));
  return c.rc;
}

Result<std::pair<std::string, std::string>> split_kv(const std::string& s) {
  const auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0)
    return make_error(Errc::kInvalid, "'" + s + "' is not KEY=VALUE");
  return std::make_pair(s.substr(0, eq), s.substr(eq + 1));
}

// `init`: a new cluster's files.
void add_init(CLI::App& app, const GlobalOptions& g, int& rc) {
  auto* init =
      app.add_subcommand("init", "create a cluster: config, CA, certificates, secret, token");
  struct Options {
    InitOptions init;
    std::vector<std::string> node_specs;
    std::string profile = "default";
  };
  auto o = std::make_shared<Options>();
  init->add_option("--dir", o->init.dir, "directory to create the cluster files in")->required();
  init->add_option("--cluster", o->init.cluster_name, "cluster name")->required();
  init->add_option("--node", o->node_specs, "NAME=ADDRESS, once per founding node")->required();
  init->add_option("--profile", o->profile,
                   "timings: default (heartbeat 50, lease 300, etcd 50/300 ms) or fast "
                   "(heartbeat 20, lease 120, etcd 20/150 ms)")
      ->check(CLI::IsMember({"default", "fast"}))
      ->capture_default_str();
  init->add_option("--heartbeat-ms", o->init.heartbeat_ms,
                   "heartbeat interval (overrides --profile)");
  init->add_option("--lease-ms", o->init.lease_ms, "quorum lease (overrides --profile)");
  init->callback([&g, &rc, o, init] {
    InitOptions& io = o->init;
    const TimingProfile profile = *timing_profile(o->profile);
    if (!init->count("--heartbeat-ms")) io.heartbeat_ms = profile.heartbeat_ms;
    if (!init->count("--lease-ms")) io.lease_ms = profile.lease_ms;
    io.etcd_heartbeat_ms = profile.etcd_heartbeat_ms;
    io.etcd_election_ms = profile.etcd_election_ms;
    for (const auto& spec : o->node_specs) {
      auto kv = split_kv(spec);
      if (!kv) {
        rc = report(g, kv.error());
        return;
      }
      io.nodes.push_back(*kv);
    }
    auto c = init_cluster(io);
    if (!c) {
      rc = report(g, c.error());
      return;
    }
    std::cout << "cluster " << c->cluster_name << " created in " << io.dir << ": " << c->path
              << "\n"
              << "copy the directory to every node (keep tls/ca.key off them), then run on each:\n"
              << "  bulwarkd --config " << c->path << " --node NAME\n";
  });
}

// `cert`: a certificate for a new node.
void add_cert(CLI::App& app, const GlobalOptions& g, int& rc) {
  auto* cert = app.add_subcommand("cert", "issue a certificate for a new node with the cluster CA");
  struct Options {
    std::string name, address, config;
  };
  auto o = std::make_shared<Options>();
  cert->add_option("name", o->name, "node name")->required();
  cert->add_option("--address", o->address, "node IP address")->required();
  cert->add_option("--config", o->config, "the cluster's bulwark.yaml")->required();
  cert->callback([&g, &rc, o] {
    auto c = load_config(o->config);
    if (!c) {
      rc = report(g, c.error());
      return;
    }
    if (auto st = issue_certificate(*c, o->name, o->address); !st) {
      rc = report(g, st.error());
      return;
    }
    std::cout << "issued " << c->cert_file(o->name) << " and " << c->key_file(o->name) << "\n";
  });
}

// `node add`.
void add_node_add(CLI::App& node, const GlobalOptions& g, int& rc) {
  auto* cmd = node.add_subcommand("add", "add a node to the cluster (and its etcd member)");
  struct Options {
    std::string name, address;
    std::vector<std::string> attrs;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("name", o->name, "node name")->required();
  cmd->add_option("--address", o->address, "node IP address")->required();
  cmd->add_option("--attr", o->attrs, "KEY=VALUE attribute, repeatable");
  cmd->callback([&g, &rc, o] {
    json attrs = json::object();
    for (const auto& a : o->attrs) {
      auto kv = split_kv(a);
      if (!kv) {
        rc = report(g, kv.error());
        return;
      }
      attrs[kv->first] = kv->second;
    }
    rc = do_write(
        g, "POST", "/v1/nodes", {{"name", o->name}, {"address", o->address}, {"attributes", attrs}},
        "node " + o->name + " added; start it with: bulwarkd --config FILE --node " + o->name);
  });
}

// `node remove`.
void add_node_remove(CLI::App& node, const GlobalOptions& g, int& rc) {
  auto* cmd = node.add_subcommand("remove", "remove a node (and its etcd member)");
  auto name = std::make_shared<std::string>();
  cmd->add_option("name", *name, "node name")->required();
  cmd->callback([&g, &rc, name] {
    if (auto st = check_name("node", *name); !st) {
      rc = report(g, st.error());
      return;
    }
    rc = do_write(g, "DELETE", "/v1/nodes/" + *name, nullptr, "node " + *name + " removed");
    // In a dev cluster (its env file sets BULWARK_DEV_DIR), a removed node
    // leaves the cluster's directory too: `dev up` must not start it again.
    if (const char* dev_dir = std::getenv("BULWARK_DEV_DIR"); rc == kCliOk && dev_dir && *dev_dir) {
      if (auto st = dev_forget_node(dev_dir, *name); !st) rc = report(g, st.error());
    }
  });
}

// `node attr`.
void add_node_attr(CLI::App& node, const GlobalOptions& g, int& rc) {
  auto* cmd = node.add_subcommand("attr", "set or unset node attributes");
  struct Options {
    std::string name;
    std::vector<std::string> sets, unsets;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("name", o->name, "node name")->required();
  cmd->add_option("assignments", o->sets, "KEY=VALUE ...");
  cmd->add_option("--unset", o->unsets, "KEY to remove, repeatable");
  cmd->callback([&g, &rc, o] {
    if (auto st = check_name("node", o->name); !st) {
      rc = report(g, st.error());
      return;
    }
    json set = json::object();
    for (const auto& a : o->sets) {
      auto kv = split_kv(a);
      if (!kv) {
        rc = report(g, kv.error());
        return;
      }
      set[kv->first] = kv->second;
    }
    if (set.empty() && o->unsets.empty()) {
      rc =
          report(g, make_error(Errc::kInvalid, "nothing to change: give KEY=VALUE or --unset KEY"));
      return;
    }
    rc = do_write(g, "PATCH", "/v1/nodes/" + o->name + "/attributes",
                  {{"set", set}, {"unset", o->unsets}}, "attributes of " + o->name + " updated");
  });
}

// `node standby|online|maintenance`.
void add_node_mode(CLI::App& node, const GlobalOptions& g, int& rc, const char* mode,
                   const char* help, const std::string& done) {
  auto* cmd = node.add_subcommand(mode, help);
  auto name = std::make_shared<std::string>();
  cmd->add_option("name", *name, "node name")->required();
  cmd->callback([&g, &rc, name, mode, done] {
    if (auto st = check_name("node", *name); !st) {
      rc = report(g, st.error());
      return;
    }
    rc = do_write(g, "PUT", "/v1/nodes/" + *name + "/mode", {{"mode", mode}},
                  "node " + *name + " " + done);
  });
}

void add_node_commands(CLI::App& app, const GlobalOptions& g, int& rc) {
  auto* node = app.add_subcommand("node", "add, remove and describe nodes");
  node->require_subcommand(1);
  add_node_add(*node, g, rc);
  add_node_remove(*node, g, rc);
  add_node_attr(*node, g, rc);
  add_node_mode(*node, g, rc, "standby", "move every resource off a node (it stays a member)",
                "is in standby: its resources move away");
  add_node_mode(*node, g, rc, "online", "let a node run resources again", "is online");
  add_node_mode(*node, g, rc, "maintenance", "stop managing a node's resources; leave them running",
                "is in maintenance: its resources are left alone");
}

// `maintenance on|off`: the whole cluster's.
void add_maintenance(CLI::App& app, const GlobalOptions& g, int& rc) {
  auto* maintenance = app.add_subcommand(
      "maintenance", "cluster maintenance mode: manage nothing, leave everything running");
  auto state = std::make_shared<std::string>();
  maintenance->add_option("state", *state, "on or off")
      ->required()
      ->check(CLI::IsMember({"on", "off"}));
  maintenance->callback([&g, &rc, state] {
    rc = do_write(g, "PUT", "/v1/maintenance", {{"enabled", *state == "on"}},
                  "maintenance mode " + *state);
  });
}

// `dev ...`: local clusters on loopback.
void add_dev_commands(CLI::App& app, int& rc) {
  auto* dev = app.add_subcommand("dev", "local clusters on loopback for development and tests");
  dev->require_subcommand(1);
  auto d = std::make_shared<DevOptions>();
  dev->add_option("--dir", d->dir, "cluster directory")->capture_default_str();
  // Every dev subcommand takes --dir too, before or after its name.
  const auto with_dir = [d](CLI::App* sub) {
    sub->add_option("--dir", d->dir, "cluster directory")->capture_default_str();
    return sub;
  };
  auto* up =
      with_dir(dev->add_subcommand("up", "start a local cluster and wait for its coordinator"));
  up->add_option("--nodes", d->nodes, "number of nodes")->capture_default_str();
  up->add_option("--subnet", d->subnet, "use 127.0.K.0/24 (default: the first free K)");
  up->add_option("--heartbeat-ms", d->heartbeat_ms, "heartbeat interval")->capture_default_str();
  up->add_option("--lease-ms", d->lease_ms, "quorum lease")->capture_default_str();
  up->add_option("--ocf-root", d->ocf_root,
                 "OCF agents directory of a new cluster (default: Debian's /usr/lib/ocf)");
  up->add_flag("--no-fencing", d->no_fencing,
               "no fence agent (a new cluster only): lost nodes are replaced once their lease "
               "has lapsed");
  up->add_option("--timeout-ms", d->timeout_ms, "how long to wait for a coordinator")
      ->capture_default_str();
  up->callback([&rc, d] { rc = dev_up(*d); });
  auto* down = with_dir(dev->add_subcommand("down", "stop every node; leave no process behind"));
  down->add_flag("--purge", d->purge, "also delete the cluster directory");
  down->callback([&rc, d] { rc = dev_down(*d); });
  auto* ls = with_dir(dev->add_subcommand("ls", "list the nodes and their processes"));
  ls->add_flag("--json", d->json, "machine-readable output");
  ls->callback([&rc, d] { rc = dev_ls(*d); });
  auto* kill = with_dir(dev->add_subcommand(
      "kill", "kill or pause a node: daemon, etcd member, everything it started"));
  kill->add_option("node", d->node, "node name")->required();
  kill->add_option("--signal", d->signal, "KILL (power loss), STOP (pause), CONT (resume), TERM")
      ->capture_default_str();
  kill->callback([&rc, d] { rc = dev_kill(*d); });
  with_dir(
      dev->add_subcommand(
          "fence", "fence agent of dev clusters: reads action=, plug= on stdin (fence-agents)"))
      ->callback([&rc, d] { rc = dev_fence(*d); });
  auto* start = with_dir(dev->add_subcommand("start", "start a stopped node on its data dir"));
  start->add_option("node", d->node, "node name")->required();
  start->add_option("--timeout-ms", d->timeout_ms, "how long to wait for the node's API")
      ->capture_default_str();
  start->callback([&rc, d] { rc = dev_start(*d); });
  auto* add = with_dir(dev->add_subcommand("add", "add a node: certificate, `node add`, start"));
  add->add_option("node", d->node, "node name (default: the next nK)");
  add->callback([&rc, d] { rc = dev_add(*d); });
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"bulwark: operate a Bulwark high-availability cluster"};
  app.require_subcommand(1);
  // Global options may also come after a subcommand: `bulwark status --json`.
  app.fallthrough();
  GlobalOptions g;
  app.add_option("--endpoint", g.endpoint,
                 "API endpoints, comma-separated, tried in order (env BULWARK_ENDPOINT)");
  app.add_option("--token-file", g.token_file,
                 "file with the admin token (env BULWARK_TOKEN_FILE)");
  app.add_option("--ca-file", g.ca_file, "cluster CA certificate (env BULWARK_CA_FILE)");
  app.add_flag("--json", g.json, "machine-readable output");
  // Each command's callback sets the exit code.
  int rc = kCliOk;
  add_init(app, g, rc);
  add_cert(app, g, rc);
  app.add_subcommand("status", "show the cluster as one node sees it")->callback([&] {
    rc = do_read(g, "/v1/status", render_status);
  });
  add_node_commands(app, g, rc);
  add_resource_commands(app, g, rc);  // apply, resource
  add_maintenance(app, g, rc);
  add_dev_commands(app, rc);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kCliOk : kCliBadInput;
  }
  return rc;
}

}  // namespace bulwark
