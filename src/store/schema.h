// The cluster state schema in etcd. Everything lives under the prefix
// (default /bulwark/<cluster>); nothing outside src/store builds keys.
//
//   PREFIX/schema              {"version": 1, "cluster": NAME}
//   PREFIX/nodes/NAME          NodeRecord
//   PREFIX/coordinator         CoordinatorRecord (the epoch)
//   PREFIX/liveness            LivenessRecord (written by the coordinator)
//   PREFIX/resources/ constraints/ placements/   reserved for resource management
//
// Values are JSON. Decoding is strict: a value that does not parse is
// reported, never half-used.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
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
  int64_t revision = 0;             // newest store revision the cache has applied
  std::vector<std::string> errors;  // values that failed to decode
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

  std::string encode_schema(const std::string& cluster) const;
  static std::string encode_node(const NodeRecord& node);
  static Result<NodeRecord> decode_node(const std::string& value);
  static std::string encode_coordinator(const CoordinatorRecord& rec);
  static Result<CoordinatorRecord> decode_coordinator(const std::string& value);
  static std::string encode_liveness(const LivenessRecord& rec);
  static Result<LivenessRecord> decode_liveness(const std::string& value);

  // Builds the typed state from the raw key/values of the prefix.
  ClusterState build_state(const std::map<std::string, KeyValue>& kvs, int64_t revision) const;

 private:
  std::string prefix_;
};

}  // namespace bulwark
