#include "cli/resource_commands.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "classes/registry/agent_classes.h"
#include "cli/exit_codes.h"
#include "cli/status_view.h"
#include "core/config.h"
#include "core/resource_config.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

// How often --wait looks at the cluster.
constexpr int64_t kWaitPollMs = 200;

std::string join(const json& list, const char* sep = ", ") {
  std::string out;
  for (const auto& e : list) out += (out.empty() ? "" : sep) + e.get<std::string>();
  return out;
}

// One line per planned change: "  restart  web        on n1, n2     command changed".
std::string render_plan(const json& plan) {
  std::string out;
  for (const auto& c : plan) {
    std::string where;
    if (c.contains("from")) {
      where = join(c["from"]) + " -> " + join(c["nodes"]);
    } else if (!c["nodes"].empty()) {
      where = "on " + join(c["nodes"]);
    }
    const auto pad = [](const std::string& s, std::size_t w) {
      return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
    };
    out += "  " + pad(c.value("action", ""), 9) + pad(c.value("resource", ""), 17) +
           pad(where, 22) + c.value("detail", "") + "\n";
  }
  return out;
}

// What --wait waits for, given `resource list --json`: empty when done,
// otherwise what is still missing.
using Progress = std::function<std::string(const json& list)>;

const json* find_resource(const json& list, const std::string& name) {
  if (!list.contains("resources") || !list["resources"].is_array()) return nullptr;
  for (const auto& r : list["resources"]) {
    if (r.value("name", "") == name) return &r;
  }
  return nullptr;
}

bool serving(const json& instance) {
  const std::string st = instance.value("state", "");
  return st == "started" || st == "promoted";
}

// Where a resource is now, and why it is not where it should be: the
// coordinator's reason and the instances' failures.
std::string situation(const json& r) {
  std::string out;
  for (const auto& i : r.value("instances", json::array())) {
    out += (out.empty() ? "" : ", ") + i.value("node", "") + ":" + i.value("state", "");
    if (i.contains("last_failure") && i.value("state", "") != "started")
      out += " (" + i["last_failure"].get<std::string>() + ")";
  }
  std::string reason = r.value("desired", json::object()).value("reason", "");
  return (out.empty() ? "runs nowhere" : out) + (reason.empty() ? "" : "; " + reason);
}

// Polls until `progress` says done or `timeout_ms` passed: 0 when done,
// 1 (with what is missing) otherwise.
int wait_for(const GlobalOptions& g, int64_t timeout_ms, const std::string& what,
             const Progress& progress) {
  SystemClock clock;
  const int64_t deadline = clock.mono_ms() + timeout_ms;
  std::string missing = "no answer";
  while (true) {
    const Call c = call_api(g, "GET", "/v1/resources");
    if (!c.ok()) return c.rc;
    missing = progress(c.body);
    if (missing.empty()) return kCliOk;
    if (clock.mono_ms() >= deadline) break;
    clock.sleep_ms(kWaitPollMs);
  }
  return report(
      g, make_error(Errc::kTimeout, what + " did not happen within " +
                                        std::to_string(timeout_ms / 1000) + " s: " + missing));
}

// The resource (or every member of the group) runs on `node`, and a
// singleton nowhere else.
Progress moved_to(std::vector<std::string> names, std::string node) {
  return [names = std::move(names), node = std::move(node)](const json& list) -> std::string {
    for (const auto& name : names) {
      const json* r = find_resource(list, name);
      if (!r) return name + " is not applied";
      std::set<std::string> at;
      for (const auto& i : r->value("instances", json::array())) {
        if (serving(i)) at.insert(i.value("node", ""));
      }
      const bool singleton = r->value("kind", "") == "singleton";
      if (!at.count(node) || (singleton && at.size() != 1)) return name + ": " + situation(*r);
    }
    return "";
  };
}

// Every instance runs again, started after the newest `resource restart`.
Progress restarted(std::vector<std::string> names) {
  return [names = std::move(names)](const json& list) -> std::string {
    for (const auto& name : names) {
      const json* r = find_resource(list, name);
      if (!r) return name + " is not applied";
      const int64_t generation = r->value("restart_generation", int64_t{0});
      std::size_t up = 0;
      for (const auto& i : r->value("instances", json::array())) {
        if (i.value("outdated", false) ||
            (serving(i) && i.value("restart_generation", int64_t{0}) < generation))
          return name + ": " + situation(*r);
        up += serving(i) ? 1 : 0;
      }
      if (up < r->value("desired", json::object()).value("nodes", json::array()).size())
        return name + ": " + situation(*r);
    }
    return "";
  };
}

// The members a directive acts on: a group's, or the resource itself.
std::vector<std::string> members(const GlobalOptions& g, const std::string& name) {
  const Call c = call_api(g, "GET", "/v1/resources/export");
  if (c.ok()) {
    auto config = parse_resource_config(c.body.value("text", ""), "applied", agent_class_syntaxes(),
                                        ResourceFileUse::kApplied);
    if (config) {
      if (const GroupSpec* group = config->find_group(name)) return group->resources;
    }
  }
  return {name};
}

void add_apply(CLI::App& app, const GlobalOptions& g, int& rc) {
  auto* apply = app.add_subcommand(
      "apply", "send the resources file (resources, groups, constraints) to the cluster");
  struct Options {
    std::string file;
    bool dry_run = false;
    bool allow_delete = false;
    int64_t expect_revision = -1;
  };
  auto o = std::make_shared<Options>();
  apply->add_option("file", o->file, "the resources YAML file")->required();
  apply->add_flag("--dry-run,--diff", o->dry_run,
                  "print what would start, stop, restart, reload, move or be deleted; change "
                  "nothing");
  apply->add_flag("--allow-delete", o->allow_delete,
                  "let a file that names no resource delete every resource");
  apply->add_option("--expect-revision", o->expect_revision,
                    "refuse unless the applied resources are still at this revision");
  apply->callback([&g, &rc, o] {
    // A directory (or a device) reads as nothing: never as "delete all".
    std::error_code ec;
    if (!std::filesystem::is_regular_file(o->file, ec)) {
      rc = report(
          g, make_error(Errc::kInvalid, o->file + (std::filesystem::exists(o->file, ec)
                                                       ? " is not a regular file (a directory?)"
                                                       : ": no such file")));
      return;
    }
    auto text = read_config_file(o->file);
    if (!text) {
      rc = report(g, text.error());
      return;
    }
    // Checked here first, so that a typo is reported without a cluster.
    if (auto parsed = parse_resource_config(*text, o->file, agent_class_syntaxes()); !parsed) {
      rc = report(g, parsed.error());
      return;
    }
    json body = {{"text", *text},
                 {"source", o->file},
                 {"dry_run", o->dry_run},
                 {"allow_delete", o->allow_delete}};
    if (o->expect_revision >= 0) body["expect_revision"] = o->expect_revision;
    const Call c = call_api(g, "PUT", "/v1/resources", body);
    rc = c.rc;
    if (!c.ok()) return;
    if (g.json) {
      std::cout << c.body.dump() << "\n";
      return;
    }
    // What the operator should know though nothing is wrong, before the
    // outcome (on stderr, so that scripts reading stdout are unaffected).
    for (const auto& note : c.body.value("notes", json::array()))
      std::cerr << "note: " << note.get<std::string>() << "\n";
    const json& plan = c.body["plan"];
    const std::string revision = std::to_string(c.body.value("revision", int64_t{0}));
    if (!c.body.value("changed", true)) {
      std::cout << "no changes: the cluster already runs " << o->file << " (revision " << revision
                << ")\n";
    } else if (o->dry_run) {
      std::cout << "dry run: " << o->file << " against revision " << revision << " would "
                << (plan.empty() ? "change the file only; nothing starts, stops or restarts\n"
                                 : "do:\n")
                << render_plan(plan) << "nothing was changed\n";
    } else {
      std::cout << "resources from " << o->file << " applied (revision " << revision << ")"
                << (plan.empty() ? "; nothing starts, stops or restarts\n" : ":\n")
                << render_plan(plan);
    }
  });
}

struct DirectiveOptions {
  std::string name;
  std::string node;
  bool force = false;
  bool wait = false;
  int64_t timeout_ms = 60000;
};

// A resource directive command: its options, its request, and what it
// prints; `wait` (if any) is what --wait waits for.
void add_directive(CLI::App* resource, const GlobalOptions& g, int& rc, const char* action,
                   const char* help, bool needs_node, bool name_optional,
                   const std::function<Progress(const DirectiveOptions&)>& wait = nullptr) {
  auto* cmd = resource->add_subcommand(action, help);
  auto o = std::make_shared<DirectiveOptions>();
  auto* name = cmd->add_option("name", o->name, "resource or group name");
  if (!name_optional) name->required();
  if (needs_node) cmd->add_option("--node", o->node, "node name")->required();
  if (std::string(action) == "cleanup")
    cmd->add_flag("--force", o->force,
                  "an instance whose stop failed counts as stopped: only once you checked that "
                  "it is");
  if (wait) {
    cmd->add_flag("--wait", o->wait, "return once it happened, or say why it did not");
    cmd->add_option("--timeout-ms", o->timeout_ms, "how long --wait waits")->capture_default_str();
  }
  cmd->callback([&g, &rc, o, action, wait] {
    if (!o->name.empty()) {
      if (auto st = check_name("resource", o->name); !st) {
        rc = report(g, st.error());
        return;
      }
    }
    if (!o->node.empty()) {
      if (auto st = check_name("node", o->node); !st) {
        rc = report(g, st.error());
        return;
      }
    }
    json body = json::object();
    if (!o->node.empty()) body["node"] = o->node;
    if (o->force) body["force"] = true;
    const std::string path = o->name.empty() ? std::string("/v1/resources/") + action
                                             : "/v1/resources/" + o->name + "/" + action;
    const Call c = call_api(g, "POST", path, body);
    rc = c.rc;
    if (!c.ok()) return;
    if (g.json) {
      std::cout << c.body.dump() << "\n";
    } else {
      std::cout << c.body.value("message", std::string(action) + " done") << " (revision "
                << c.body.value("revision", int64_t{0}) << ")\n";
    }
    if (o->wait) {
      rc = wait_for(g, o->timeout_ms, std::string(action) + " of " + o->name, wait(*o));
      if (rc == kCliOk && !g.json) std::cout << "done\n";
    }
  });
}

}  // namespace

void add_resource_commands(CLI::App& app, const GlobalOptions& g, int& rc) {
  add_apply(app, g, rc);
  auto* resource = app.add_subcommand(
      "resource", "list, export, move, ban, clean up, restart, enable, disable, manage resources");
  resource->require_subcommand(1);
  resource->add_subcommand("list", "each resource: kind, placement, state and failures")
      ->callback([&g, &rc] {
        const Call c = call_api(g, "GET", "/v1/resources");
        rc = c.rc;
        if (c.ok()) std::cout << (g.json ? c.body.dump(2) + "\n" : render_resources(c.body));
      });
  resource->add_subcommand("export", "print the applied resources file, exactly as it was applied")
      ->callback([&g, &rc] {
        const Call c = call_api(g, "GET", "/v1/resources/export");
        rc = c.rc;
        if (c.ok()) std::cout << (g.json ? c.body.dump() + "\n" : c.body.value("text", ""));
      });
  add_directive(resource, g, rc, "move", "run a resource on this node (until `resource clear`)",
                true, false,
                [&g](const DirectiveOptions& o) { return moved_to(members(g, o.name), o.node); });
  add_directive(resource, g, rc, "ban", "keep a resource off this node (until `resource clear`)",
                true, false);
  add_directive(resource, g, rc, "clear", "forget the moves and bans of a resource", false, false);
  add_directive(resource, g, rc, "cleanup",
                "reset fail counts on every node (of every resource without a name) and retry "
                "failed stops",
                false, true);
  add_directive(resource, g, rc, "restart",
                "restart every instance (a clone one instance at a time)", false, false,
                [&g](const DirectiveOptions& o) { return restarted(members(g, o.name)); });
  add_directive(resource, g, rc, "enable", "let a disabled resource run again", false, false);
  add_directive(resource, g, rc, "disable", "stop a resource everywhere (until enable)", false,
                false);
  add_directive(resource, g, rc, "manage", "manage an unmanaged resource again", false, false);
  add_directive(resource, g, rc, "unmanage",
                "leave a resource as it runs: no monitors, starts, stops or restarts", false,
                false);
}

}  // namespace bulwark
