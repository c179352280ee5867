// The cluster state store: a watch-fed cache of everything under the prefix,
// and the only writer of it. Every write is an etcd transaction that compares
// revisions, so a writer acting on a stale view changes nothing.
//
// Thread-safety: all methods may be called from any thread. The watch runs on
// the store's own thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/env.h"
#include "core/resource_config.h"
#include "store/etcd_client.h"
#include "store/schema.h"
#include "store/store_writes.h"

namespace bulwark {

struct CacheInfo {
  bool loaded = false;
  bool watching = false;          // a watch stream is established now
  int64_t revision = 0;           // newest revision applied to the cache
  int64_t confirmed_ago_ms = -1;  // since a linearizable read proved the cache current
  int64_t reloads = 0;            // full reloads (start, compaction)
  std::string last_error;
};

// What the cluster says of one node, read without a cache (a daemon asks
// before it starts its etcd member): whether the cluster was initialised,
// and the node's record if it has one.
struct Registration {
  bool initialised = false;
  std::optional<NodeRecord> node;
};
Result<Registration> read_registration(EtcdClient& etcd, const Schema& schema,
                                       const std::string& node);

// The node's watch-fed cache of the store, as a writer waits on it: an
// interface, so that the simulation (tests/sim) provides its own.
class CacheWait {
 public:
  virtual ~CacheWait() = default;
  // Blocks until the cache has applied `revision` or the timeout passes.
  virtual bool wait_for_revision(int64_t revision, int timeout_ms) = 0;
};

class Store final : public CacheWait {
 public:
  // `coordinator_timeout_ms` is the deadline of coordinator claims and
  // writes: shorter than an etcd leader election, so that a request that hung
  // on a dead leader is retried as soon as a new leader can exist.
  // `classes` read the applied resources file (it outlives the store).
  Store(const Clock& clock, EtcdClient& etcd, Schema schema, const AgentClassSyntaxes& classes,
        std::string cluster_name, int coordinator_timeout_ms);
  ~Store() override;

  void start();
  void stop();

  ClusterState state() const;
  CacheInfo cache_info() const;
  const Schema& schema() const { return schema_; }
  EtcdClient& etcd() { return etcd_; }

  bool wait_for_revision(int64_t revision, int timeout_ms) override;
  // A linearizable read of the schema key: proves (or not) that the cache is
  // current, and records when. Returns the store revision etcd reported.
  Result<int64_t> confirm_fresh();
  // The first etcd endpoint (this node's own member in embedded mode) is
  // healthy: the watch streams from it (EtcdClient::rehome_watch).
  void prefer_first_endpoint();

  // The coordinator's and the node agent's writes (store_writes.h).
  StoreWrites& writes() { return writes_; }

  // --- operator writes ----------------------------------------------------
  // Creates a node; kConflict if the name exists.
  Result<int64_t> create_node(const NodeRecord& node);
  // Read-modify-write of one node, retried (bounded) when another writer
  // changed it first or etcd could not answer. `mutate` must be idempotent
  // (it may run again after an attempt whose outcome was unknown).
  // kNotFound if it does not exist.
  Result<int64_t> update_node(const std::string& name,
                              const std::function<Status(NodeRecord&)>& mutate);
  Result<int64_t> delete_node(const std::string& name);
  // Read-modify-write of the directives record (created when absent).
  Result<int64_t> update_directives(const std::function<Status(DirectivesRecord&)>& mutate);
  // Read-modify-write of the resources record: `mutate` gets the current one
  // (nullopt when absent; its mod_revision filled) right before each
  // attempt's transaction, which compares that revision, and leaves the new
  // one or refuses (the caller checks its quorum lease there). A record
  // left as it was is not written: the result is its revision.
  Result<int64_t> put_resources(
      const std::function<Status(std::optional<ResourcesRecord>&)>& mutate);

 private:
  template <class T>
  Result<T> retry_transient(const std::function<Result<T>(bool after_unknown)>& attempt);
  // Deadline of one attempt of an operator write: short enough that a
  // request lost in an etcd election is retried well within the overall
  // retry budget.
  int write_timeout_ms() const { return 3 * coordinator_timeout_ms_; }
  Result<int64_t> create_node_once(const NodeRecord& node, bool after_unknown);
  // Read-modify-write of one key, retried (bounded) when another writer
  // changed it first or etcd could not answer. `mutate` gets the current
  // value (nullopt: absent) and its mod_revision (0: absent), and leaves the
  // new one (nullopt: delete); it must be idempotent. A value left
  // unchanged is not written: the result is the revision it has.
  using KeyMutation = std::function<Status(std::optional<std::string>&, int64_t mod_revision)>;
  Result<int64_t> update_key(const std::string& key, const KeyMutation& mutate);
  Result<int64_t> update_key_once(const std::string& key, const KeyMutation& mutate);
  Result<int64_t> delete_node_once(const std::string& name, bool after_unknown);
  void run_watch();
  Status reload();
  void apply(const std::vector<WatchEvent>& events, int64_t revision);

  const Clock& clock_;
  EtcdClient& etcd_;
  Schema schema_;
  const AgentClassSyntaxes& classes_;
  int coordinator_timeout_ms_;
  StoreWrites writes_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable revision_cv_;
  std::map<std::string, KeyValue> kvs_;
  // state() is called on every control-loop tick: decode the records only
  // when something changed.
  mutable std::optional<ClusterState> decoded_;
  // The parsed resources file and the revision it was parsed at.
  mutable std::shared_ptr<const ResourceConfig> parsed_resources_;
  mutable int64_t parsed_resources_revision_ = 0;
  int64_t revision_ = 0;
  bool loaded_ = false;
  bool watching_ = false;
  int64_t confirmed_mono_ms_ = -1;
  int64_t reloads_ = 0;
  std::string last_error_;

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace bulwark
