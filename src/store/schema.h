// The cluster state schema in etcd. Everything lives under the prefix
// (default /bulwark/<cluster>); nothing outside src/store builds keys.
//
//   PREFIX/schema              {"version": 1, "cluster": NAME}
//   PREFIX/nodes/NAME          NodeRecord
//   PREFIX/coordinator         CoordinatorRecord (the epoch)
//   PREFIX/liveness            LivenessRecord (written by the coordinator)
//   PREFIX/resources           ResourcesRecord: the resources file as applied (operator)
//   PREFIX/directives          DirectivesRecord: moves, bans, cleanups, maintenance (operator)
//   PREFIX/placement           PlacementRecord: where each resource runs (coordinator)
//   PREFIX/status/NAME         NodeStatusRecord: what runs on NAME (that node's agent)
//
// Values are JSON. Decoding is strict: a value that does not parse is
// reported, never half-used.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "core/resource_config.h"
#include "store/etcd_client.h"

namespace bulwark {

constexpr int kSchemaVersion = 1;

enum class NodeMode { kOnline, kStandby, kMaintenance };
const char* node_mode_name(NodeMode mode);
std::optional<NodeMode> parse_node_mode(const std::string& s);

struct NodeRecord {
  std::string name;
  std::string address;
  std::map<std::string, std::string> attributes;
  NodeMode mode = NodeMode::kOnline;
  Ports ports;
  // Random, made when the node is added (or the cluster initialised): the
  // node's data dir records it, so that the data of an earlier node of the
  // same name (removed, then added again) is never mistaken for this
  // node's. Empty in records written before it existed.
  std::string uid;
  int64_t mod_revision = 0;  // filled when read from the store
};

struct CoordinatorRecord {
  std::string node;
  int64_t epoch = 0;
  int64_t acquired_wall_ms = 0;  // when the holder took the epoch (for reports)
  int64_t mod_revision = 0;      // the epoch's fencing token
};

struct LivenessRecord {
  int64_t epoch = 0;  // of the coordinator that wrote it
  std::map<std::string, bool> online;
  int64_t mod_revision = 0;
};

// The resources file exactly as `bulwark apply` sent it. Every daemon parses
// the same text with the same parser, so they all see the same resources.
struct ResourcesRecord {
  std::string text;
  std::string source;  // the file name given at apply, for messages
  int64_t applied_wall_ms = 0;
  // OCF agent ("ocf:PROVIDER:TYPE") -> how it reloads, from its meta-data on
  // the node that took the apply (AgentSpec::reload).
  std::map<std::string, ReloadTraits> reload;
  int64_t mod_revision = 0;
};

// The resources file with the reload traits of its OCF agents filled in.
std::shared_ptr<const ResourceConfig> with_reload_traits(ResourceConfig config,
                                                         const ResourcesRecord& record);

// The operator's instructions that are not part of the resources file.
struct DirectivesRecord {
  std::map<std::string, std::string> moves;           // resource -> node
  std::map<std::string, std::set<std::string>> bans;  // resource -> nodes
  // resource -> generation; a node resets its fail count for a resource
  // when the generation it last honoured is older.
  std::map<std::string, int64_t> cleanups;
  // resource -> generation of `cleanup --force`: the operator says that an
  // instance whose stop failed (blocked) is stopped.
  std::map<std::string, int64_t> forced_cleanups;
  // resource -> generation of `resource restart`: an instance started
  // before the newest one restarts (one instance of a clone at a time).
  std::map<std::string, int64_t> restarts;
  std::set<std::string> disabled;   // `resource disable`: stopped everywhere
  std::set<std::string> unmanaged;  // `resource unmanage`: left as they run
  bool maintenance = false;         // the cluster manages nothing, stops nothing
  int64_t mod_revision = 0;
};

struct PlacedResource {
  std::vector<std::string> nodes;     // sorted
  std::vector<std::string> promoted;  // subset of nodes
  std::string reason;                 // why it is not (fully) placed
  bool operator==(const PlacedResource&) const = default;
};

struct PlacementRecord {
  int64_t epoch = 0;               // of the coordinator that wrote it
  int64_t resources_revision = 0;  // mod_revision of the ResourcesRecord it places
  std::map<std::string, PlacedResource> resources;
  int64_t mod_revision = 0;
};

enum class InstanceState { kStopped, kStarting, kStarted, kPromoted, kStopping, kFailed, kBlocked };
const char* instance_state_name(InstanceState state);
// The instance runs (started or promoted).
inline bool instance_started(InstanceState s) {
  return s == InstanceState::kStarted || s == InstanceState::kPromoted;
}
std::optional<InstanceState> parse_instance_state(const std::string& s);

// The notify handshake of a clone with notify (node_agent.h): an operation
// this node announced and waits to run, the last one it ran, and up to
// which announcement of each node this node's instance was told.
struct NotifyStatus {
  std::string pending;  // "start", "stop", "promote", "demote"; empty: none
  int64_t pending_seq = 0;
  std::string done;  // the operation of done_seq
  int64_t done_seq = 0;
  std::map<std::string, int64_t> told;  // node -> its newest announcement notified here
  bool empty() const { return pending.empty() && done.empty() && told.empty(); }
  bool operator==(const NotifyStatus&) const = default;
};

struct InstanceStatus {
  InstanceState state = InstanceState::kStopped;
  // It may be promoted, whatever `state` says: a promotion under way, or a
  // promoted instance that failed and has not been stopped yet.
  bool promoted = false;
  int fail_count = 0;
  std::string last_failure;  // what failed, for humans
  int64_t last_failure_wall_ms = 0;
  int64_t cleanup_generation = 0;  // the newest cleanup this node honoured
  // `state` (starting) or `promoted` says only that the node waits to claim
  // a start or promotion under the placement it has seen: it happens only
  // if that placement is still the current one when the claim commits.
  // Never set in the record a claim itself writes: that one, committed,
  // means the node may start it.
  bool claim_pending = false;
  // It runs a definition older than the applied one, or was started before
  // the newest `resource restart`: it restarts (or reloads) when its turn
  // comes (NodeAgent).
  bool outdated = false;
  int64_t restart_generation = 0;  // the `resource restart` it was started under
  std::string definition;          // run_fingerprint of what it runs; empty: not running
  // Left alone (cluster or node maintenance, `resource unmanage`): this
  // node neither stops it when it loses its lease nor when its daemon
  // stops, so nothing but a fence proves it gone (placement_step.h).
  bool unmanaged = false;
  NotifyStatus notify;
  bool operator==(const InstanceStatus&) const = default;
};

// What one node's agent observes on that node. Written only by that node.
struct NodeStatusRecord {
  // The writing daemon's membership incarnation: a record whose incarnation
  // is not the node's current one was left by an earlier daemon, and says
  // nothing certain about what runs there now.
  uint64_t incarnation = 0;
  bool probed = false;  // every resource was probed since the daemon started
  // Set when the coordinator rewrote the record because the node was fenced
  // or its lease expired everywhere: why its exclusive instances are
  // recorded as stopped.
  std::string voided;
  std::map<std::string, InstanceStatus> resources;
  int64_t mod_revision = 0;
  bool operator==(const NodeStatusRecord&) const = default;
};

struct ClusterState {
  bool loaded = false;       // the cache has read the store at least once
  int schema_version = 0;    // 0: the cluster was never initialised
  std::string cluster_name;  // as recorded in the schema key
  std::map<std::string, NodeRecord> nodes;
  // Every node whose key exists, decodable or not: a record this version
  // cannot read (a newer mode, a hand edit) is not a removed node.
  std::set<std::string> node_keys;
  std::optional<CoordinatorRecord> coordinator;
  std::optional<LivenessRecord> liveness;
  std::optional<ResourcesRecord> resources;
  // The resources record exists but does not decode (a newer format, a hand
  // edit): like a file that does not parse, everything is held as it is --
  // never taken for "no resources".
  bool resources_unreadable = false;
  // `resources` parsed (the store caches it per revision); null when there
  // is no resources record or it does not parse (the reason is in errors).
  std::shared_ptr<const ResourceConfig> resource_config;
  DirectivesRecord directives;
  std::optional<PlacementRecord> placement;
  std::map<std::string, NodeStatusRecord> statuses;  // by node
  int64_t revision = 0;                              // newest store revision the cache has applied
  std::vector<std::string> errors;                   // values that failed to decode
};

class Schema {
 public:
  explicit Schema(std::string prefix) : prefix_(std::move(prefix)) {}
  const std::string& prefix() const { return prefix_; }
  std::string root() const { return prefix_ + "/"; }
  std::string schema_key() const { return prefix_ + "/schema"; }
  std::string nodes_prefix() const { return prefix_ + "/nodes/"; }
  std::string node_key(const std::string& name) const { return nodes_prefix() + name; }
  std::string coordinator_key() const { return prefix_ + "/coordinator"; }
  std::string liveness_key() const { return prefix_ + "/liveness"; }
  std::string resources_key() const { return prefix_ + "/resources"; }
  std::string directives_key() const { return prefix_ + "/directives"; }
  std::string placement_key() const { return prefix_ + "/placement"; }
  std::string statuses_prefix() const { return prefix_ + "/status/"; }
  std::string status_key(const std::string& node) const { return statuses_prefix() + node; }

  std::string encode_schema(const std::string& cluster) const;
  static std::string encode_node(const NodeRecord& node);
  static Result<NodeRecord> decode_node(const std::string& value);
  static std::string encode_coordinator(const CoordinatorRecord& rec);
  static Result<CoordinatorRecord> decode_coordinator(const std::string& value);
  static std::string encode_liveness(const LivenessRecord& rec);
  static Result<LivenessRecord> decode_liveness(const std::string& value);
  static std::string encode_resources(const ResourcesRecord& rec);
  static Result<ResourcesRecord> decode_resources(const std::string& value);
  static std::string encode_directives(const DirectivesRecord& rec);
  static Result<DirectivesRecord> decode_directives(const std::string& value);
  static std::string encode_placement(const PlacementRecord& rec);
  static Result<PlacementRecord> decode_placement(const std::string& value);
  static std::string encode_status(const NodeStatusRecord& rec);
  static Result<NodeStatusRecord> decode_status(const std::string& value);

  // Builds the typed state from the raw key/values of the prefix.
  ClusterState build_state(const std::map<std::string, KeyValue>& kvs, int64_t revision) const;

 private:
  std::string prefix_;
};

}  // namespace bulwark
