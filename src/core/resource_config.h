// The resources file that `bulwark apply` sends to the cluster: resources
// (what to run, how, and how many), groups and constraints. It is validated
// as a whole, so that it is applied entirely or refused with
// "file:line:column: rule" and nothing committed. This is the parser and
// the rules that need no cluster state; placement is the coordinator's.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/yaml_section.h"

namespace bulwark {

// kVip: the built-in virtual IP (src/classes/vip): params address, prefix,
// interface, label, conflict_probe_ms. Always a singleton.
// kProxy: bulwark-proxy run by the cluster, its configuration in the
// resource's `proxy` section; backends with servers_from follow where a
// resource runs (src/classes/proxy/proxy_controller.h).
enum class AgentClass { kExec, kOcf, kSystemd, kVip, kProxy };
// Singleton: exactly one instance cluster-wide (active/passive). Clone: one
// per eligible node, or `clone_max`. Promotable: a clone whose instances are
// promoted (up to `promoted_max`) or replicas.
enum class ResourceKind { kSingleton, kClone, kPromotable };

// A `vip` resource's parameters, as src/classes/vip/vip_syntax.cc reads
// them from its params (kept here with the rest of the spec, which the
// running record stores).
struct VipSpec {
  std::string address;  // an IPv4 or IPv6 literal
  bool ipv6 = false;
  int prefix = 32;        // 32 or 128 unless given
  std::string interface;  // empty in loopback mode
  std::string label;      // IPv4 only: "IFACE" or "IFACE:SUFFIX"
  int conflict_probe_ms = 30;
  // An address in 127.0.0.0/8 (`bulwark dev` clusters): every such address
  // is local already, so Bulwark only records who holds it, with no root
  // and no netlink; bulwark-proxy listens on it only on the holder.
  bool loopback = false;
};

// How an OCF agent reloads changed parameters without a restart, as its
// meta-data says. It is read where the file is applied and recorded with it
// (ResourcesRecord), so that every node decides alike. OCF 1.1 agents:
// action "reload-agent", the parameters marked reloadable="1". Older agents
// (most of Debian's resource-agents): action "reload", the parameters not
// marked unique="1" -- Pacemaker's rule for both.
struct ReloadTraits {
  std::string action;  // empty: the agent cannot reload
  std::set<std::string> params;
  bool operator==(const ReloadTraits&) const = default;
};

struct AgentSpec {
  AgentClass agent_class = AgentClass::kExec;
  std::string provider;                       // ocf:PROVIDER:TYPE
  std::string type;                           // ocf:PROVIDER:TYPE
  std::string unit;                           // systemd:UNIT
  std::vector<std::string> command;           // exec: argv, ${BULWARK_...} expanded per node
  std::map<std::string, std::string> params;  // ocf: OCF_RESKEY_*; exec: environment
  std::string user;
  std::string working_dir;
  VipSpec vip;  // vip only
  // proxy only: the `proxy` section (bulwark-proxy's configuration) as YAML
  // text, and the resources its backends take their servers from.
  std::string proxy;
  std::vector<std::string> proxy_sources;
  // ocf only: not from the file, from the agent's meta-data at apply.
  ReloadTraits reload;
  // Its stop can always be over by the lease's end: an exec resource's (and
  // a proxy's) process group is SIGKILLed then, a VIP's removal is one
  // netlink call.
  // Other classes' stops run to their timeouts.
  bool stop_ends_with_lease() const {
    return agent_class == AgentClass::kExec || agent_class == AgentClass::kVip ||
           agent_class == AgentClass::kProxy;
  }
};

// An operation's command still running at its deadline gets SIGTERM, and
// this long later SIGKILL: part of what an operation may take, which the
// node agent enforces and the coordinator's wait for a lost node's OCF and
// systemd stops (placement_step.cc) counts on.
constexpr int64_t kOperationTermGraceMs = 2000;

struct MonitorSpec {
  int interval_ms = 10000;
  int timeout_ms = 20000;
  std::string tcp;   // exec: "ADDRESS:PORT" that must accept, ${BULWARK_...} allowed
  std::string http;  // exec: URL that must answer 2xx/3xx
};

struct ResourceSpec {
  std::string name;
  AgentSpec agent;
  ResourceKind kind = ResourceKind::kSingleton;
  int clone_max = 0;  // 0: one per eligible node
  int promoted_max = 1;
  MonitorSpec monitor;
  int start_timeout_ms = 20000;
  int stop_timeout_ms = 20000;
  // Clones of OCF agents: every active instance's agent is told (its notify
  // action, OCF_RESKEY_CRM_meta_notify_*) before and after each start,
  // stop, promotion and demotion of any instance, as Pacemaker does.
  bool notify = false;
  int notify_timeout_ms = 20000;
  int migration_threshold = 3;
  int failure_timeout_ms = 0;  // 0: failures count until cleanup
  int stickiness = 100;
  bool enabled = true;
  bool exclusive() const { return kind != ResourceKind::kClone; }
};

struct GroupSpec {
  std::string name;
  std::vector<std::string> resources;  // started in order, stopped in reverse, one node
};

struct ColocationSpec {
  std::string resource;
  std::string other;
  bool apart = false;  // false: on the same node as `other`
};

struct OrderSpec {
  std::vector<std::string> sequence;  // each starts after the one before it
};

struct LocationSpec {
  std::string resource;
  bool avoid = false;                             // false: prefer
  std::string node;                               // by name, or:
  std::map<std::string, std::string> attributes;  // by node attributes (all must match)
  int score = 100;
};

struct ResourceConfig {
  std::vector<ResourceSpec> resources;
  std::vector<GroupSpec> groups;
  std::vector<ColocationSpec> colocations;
  std::vector<OrderSpec> orders;
  std::vector<LocationSpec> locations;

  const ResourceSpec* find(const std::string& name) const;
  const GroupSpec* find_group(const std::string& name) const;
};

// What one agent class brings to the resources file, defined in its folder
// (src/classes/X/X_syntax.h, all of them listed by
// src/classes/registry/agent_classes.h): the `agent:` values that name it,
// what its nature allows, and the parse of what only it takes. The parser
// here reads the keys every class shares, then hands the resource to its
// class.
struct AgentClassSyntax {
  AgentClass agent_class = AgentClass::kExec;
  std::string name;  // in messages: "ocf"
  // The `agent:` value ("exec"), or its prefix when it ends with ':'
  // ("ocf:"), the rest being the class's to read.
  std::string agent;
  std::string agent_form;         // in messages: "ocf:PROVIDER:TYPE"
  bool promoted_role = false;     // may be promotable
  bool notify_action = false;     // clone.notify / promotable.notify
  bool command_monitors = false;  // monitor.tcp and monitor.http
  // The keys it brings to the file, for the reference and the parse: a
  // resource key ("resources[]" command) is refused in other classes'
  // resources.
  std::vector<ConfigKeyword> keywords;
  MonitorSpec monitor;  // its monitor's defaults
  // Reads and checks the class's part of the resource `s`, whose shared
  // keys and kind are read into `r` (its monitor comes after); `agent` is
  // the `agent:` value. Errors carry file:line:column.
  std::function<Status(const YamlSection& s, const std::string& agent, ResourceSpec& r)> parse;
  // Optional: checks of what another program reads (a proxy's section, by
  // bulwark-proxy's own parser), made where a file is applied only
  // (ResourceFileUse::kApply).
  std::function<Status(const YamlSection& s, const ResourceSpec& r)> check_at_apply;
  // Optional: checks against the whole file once every resource is read
  // (a proxy's servers_from names a service of the file).
  std::function<Status(const YamlSection& s, const ResourceSpec& r, const ResourceConfig& c)>
      check_in_file;
};
using AgentClassSyntaxes = std::vector<AgentClassSyntax>;

// kApply: a file offered to the cluster (the CLI, the daemon's apply):
// every check. kApplied: the file the cluster runs, read back (the store):
// the checks_at_apply are skipped, so that a later, stricter version of
// another program's parser cannot make an applied file unreadable.
enum class ResourceFileUse { kApply, kApplied };

// Parses the resources file; `classes` are the agent classes it may name
// (src/classes/registry/agent_classes.h: every class bulwarkd runs).
Result<ResourceConfig> parse_resource_config(const std::string& text, const std::string& path,
                                             const AgentClassSyntaxes& classes,
                                             ResourceFileUse use = ResourceFileUse::kApply);

// ${NAME} references in `text` (found at `at` in `s`) must name a variable
// of resource_variables(): anything else is a typo that would otherwise
// reach a command line unexpanded.
Status check_resource_variables(const YamlSection& s, const YAML::Node& at,
                                const std::string& text);

// An agent class's name in the resources file: exec, ocf, systemd, vip, proxy.
const char* agent_class_name(AgentClass k);
// The agent as the resources file names it: exec, ocf:PROVIDER:TYPE,
// systemd:UNIT, vip or proxy (also the key of an OCF agent's reload traits).
std::string agent_name(const AgentSpec& a);

// The variables Bulwark expands in argv elements and monitor targets.
const std::vector<std::string>& resource_variables();

// Every key of the file: those all classes share, then each class's.
std::vector<ConfigKeyword> resource_config_keywords(const AgentClassSyntaxes& classes);

}  // namespace bulwark
