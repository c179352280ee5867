// A client for etcd's v3 API through its JSON gateway (HTTPS with a client
// certificate). Every request has a deadline: a request in flight when etcd
// loses its leader hangs, so it must end on its own. Endpoints are tried in
// their configured order (the node's own member first), endpoints that failed
// in the last second last; a write moves to the next endpoint only when it
// cannot have reached etcd (connection refused or failed), so it is never
// applied twice.
//
// Thread-safety: all methods may be called from any thread; concurrent
// requests use separate connections, so one hung request delays no other.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/error.h"

namespace httplib {
class Client;
}

namespace bulwark {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // the store revision the read saw
};

struct Compare {
  enum class Target { kModRevision, kCreateRevision, kVersion, kValue };
  enum class Op { kEqual, kNotEqual, kLess, kGreater };
  std::string key;
  Target target = Target::kModRevision;
  Op op = Op::kEqual;
  int64_t number = 0;
  std::string value;

  static Compare mod_revision(std::string key, int64_t rev) {
    return Compare{std::move(key), Target::kModRevision, Op::kEqual, rev, {}};
  }
  static Compare absent(std::string key) {
    return Compare{std::move(key), Target::kCreateRevision, Op::kEqual, 0, {}};
  }
};

struct TxnOp {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  bool prefix = false;  // delete: every key under `key`

  static TxnOp put(std::string key, std::string value) {
    return TxnOp{Kind::kPut, std::move(key), std::move(value), false};
  }
  static TxnOp del(std::string key) { return TxnOp{Kind::kDelete, std::move(key), {}, false}; }
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
};

struct EtcdMember {
  uint64_t id = 0;
  std::string name;  // empty until the member has started
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
};

struct EtcdStatus {
  std::string endpoint;
  std::string version;
  uint64_t member_id = 0;
  uint64_t leader = 0;
  int64_t raft_term = 0;
  int64_t revision = 0;
  int64_t db_size = 0;
};

struct WatchEvent {
  bool deleted = false;
  KeyValue kv;
};

struct EtcdClientOptions {
  std::vector<std::string> endpoints;  // https://host:port
  std::string ca_file, cert_file, key_file;
  int request_timeout_ms = 2000;
  const Clock* clock = nullptr;  // required
};

// etcd's key-value API as the store's writers use it (StoreWrites): an
// interface, so that the simulation (tests/sim) runs those writers over its
// simulated etcd.
class Kv {
 public:
  virtual ~Kv() = default;
  // timeout_ms 0: the client's configured request timeout.
  virtual Result<RangeResult> get(const std::string& key, bool prefix = false,
                                  int timeout_ms = 0) = 0;
  virtual Result<TxnResult> txn(const std::vector<Compare>& compares,
                                const std::vector<TxnOp>& success,
                                const std::vector<TxnOp>& failure = {}, int timeout_ms = 0) = 0;
};

class EtcdClient final : public Kv {
 public:
  explicit EtcdClient(EtcdClientOptions options);
  ~EtcdClient() override;

  Result<RangeResult> get(const std::string& key, bool prefix = false, int timeout_ms = 0) override;
  Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure = {}, int timeout_ms = 0) override;
  Result<std::vector<EtcdMember>> member_list();
  Result<EtcdMember> member_add(const std::string& peer_url);
  Status member_remove(uint64_t id);
  // Discards history before `revision` (etcd compaction).
  Status compact(int64_t revision);
  // Status of one endpoint (not the others): for health reporting.
  Result<EtcdStatus> status(const std::string& endpoint);

  // Watches every key under `prefix` from `start_revision`, calling
  // `on_events(events, revision)` for each batch. Returns when `stop` is set,
  // the stream fails (kUnavailable), or the revision was compacted (kConflict,
  // message has the compact revision): the caller then reloads and re-watches.
  Status watch(const std::string& prefix, int64_t start_revision,
               const std::function<void(const std::vector<WatchEvent>&, int64_t)>& on_events,
               const std::atomic<bool>& stop);
  // Interrupts a watch blocked in another thread. `stale`: the watch's
  // member stopped delivering (paused, cut off); prefer others for a while.
  void cancel_watch(bool stale = false);
  // Moves a watch that streams from another member than the first endpoint
  // (this node's own member, in embedded mode) back to it: a remote
  // member's host can vanish without a reset (power loss, a cut link), and
  // its stream would then stall silently. Call once the first endpoint is
  // known to be healthy. True if a watch was moved.
  bool rehome_watch();

  std::vector<std::string> endpoints();
  void set_endpoints(std::vector<std::string> endpoints);
  // Endpoints whose hosts this node knows to be unreachable (its heartbeats
  // get no answer): tried last, after those that failed recently. A dead
  // host answers nothing, not even a reset, so a request or a connection
  // to it costs its whole timeout, and its pooled connections are dropped.
  // A watch streaming from one of them is moved elsewhere. Returns true if
  // a watch was moved.
  bool set_unreachable(const std::set<std::string>& endpoints);

 private:
  struct Reply {
    int status = 0;
    std::string body;
  };
  Result<Reply> post(const std::string& path, const std::string& body, bool retry_elsewhere,
                     int timeout_ms = 0);
  std::unique_ptr<httplib::Client> connect(const std::string& endpoint, int timeout_ms) const;
  // Endpoints in the order to try them now.
  std::vector<std::string> attempt_order();
  void mark_failed(const std::string& endpoint, bool unreachable);
  std::unique_ptr<httplib::Client> acquire(const std::string& endpoint, int timeout_ms);
  void release(const std::string& endpoint, std::unique_ptr<httplib::Client> client);

  EtcdClientOptions options_;
  std::mutex mu_;  // guards options_.endpoints, idle_, failed_at_ms_, unreachable_
  std::map<std::string, std::vector<std::unique_ptr<httplib::Client>>> idle_;
  std::map<std::string, int64_t> failed_at_ms_;
  std::set<std::string> unreachable_;
  std::mutex watch_mu_;
  httplib::Client* watch_client_ = nullptr;
  std::string watch_endpoint_;
};

// The first key after every key that starts with `prefix` (etcd's range_end).
std::string prefix_end(const std::string& prefix);

// What etcd's refusal of a request (a non-200 answer with `message`) means,
// as an error code; the one place that reads etcd's words:
//   kUnavailable  refused before anything was applied, and passing (no
//                 leader, a member stopping, a cluster not yet healthy
//                 enough for a membership change): try again or elsewhere;
//   kTimeout      it may or may not have been applied (timed out, the
//                 leader changed): retry only what re-checks first;
//   kInvalid      anything else: the same request is refused again.
Errc etcd_refusal_code(const std::string& message);

}  // namespace bulwark
