// The replicated store (etcd) as one linearizable in-memory key-value map,
// with etcd's transaction semantics for the subset src/store uses: compares
// on mod_revision, create_revision, version and value; put and delete (of a
// key or a prefix); one global revision that a transaction changing
// anything increments once, so every key it writes gets the same
// mod_revision. Which node can reach the store, how long a call takes and
// how late each node's watch delivers are SimCluster's business.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/etcd_client.h"
#include "store/schema.h"

namespace bulwark::sim {

class SimStore {
 public:
  explicit SimStore(Schema schema) : schema_(std::move(schema)) {}

  const Schema& schema() const { return schema_; }
  int64_t revision() const { return revision_; }

  // One transaction: `success` applies when every compare holds, else
  // `failure` (etcd's Txn).
  TxnResult txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                const std::vector<TxnOp>& failure = {});
  std::optional<KeyValue> get(const std::string& key) const;

  // The typed cluster state at the current revision, as Store::state()
  // builds it (Schema::build_state, the resources file parsed once per
  // revision of its record). Built once per revision and shared by every
  // node's cache.
  std::shared_ptr<const ClusterState> state();

 private:
  bool holds(const Compare& c) const;
  bool apply(const TxnOp& op);  // true when it changed something

  Schema schema_;
  std::map<std::string, KeyValue> kvs_;
  int64_t revision_ = 1;  // etcd's first revision
  std::shared_ptr<const ClusterState> state_;
  std::shared_ptr<const ResourceConfig> parsed_resources_;
  int64_t parsed_resources_revision_ = 0;
};

}  // namespace bulwark::sim
