// What one node's code may use of the simulated world; SimCluster
// implements it. Times here are global simulated milliseconds; each node's
// own Clock adds its offset (monotonic clocks of different nodes are
// unrelated, and nothing may assume otherwise).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "membership/membership.h"
#include "sim/sim_processes.h"
#include "sim/sim_random.h"
#include "sim/trace.h"
#include "store/etcd_client.h"

namespace bulwark::sim {

// The settings every simulated daemon runs with (bulwarkd's defaults unless
// noted) and the cluster around them.
struct SimConfig {
  std::string cluster = "sim";
  std::string secret = "sim cluster secret";
  std::vector<std::string> nodes;  // n1, n2, ...
  int heartbeat_ms = 50;
  int lease_ms = 300;
  int lease_guard_ms = 100;   // bulwarkd: lease_ms / 3
  int lease_margin_ms = 100;  // bulwarkd: 2 * heartbeat_ms
  // bulwarkd's coordinator_timeout_ms with the default etcd timings: the
  // deadline of claims, coordinator writes and status writes.
  int store_timeout_ms = 200;
  bool fencing = false;
  int watchdog_ms = 0;  // every node's watchdog timeout; 0: no watchdog
  std::string resources_yaml;
};

// One store request as a node's thread sends it (SimKv): a transaction, or
// a read of one key.
struct StoreRequest {
  std::vector<Compare> compares;
  std::vector<TxnOp> ops;
  std::string read_key;  // not empty: a read of this key, not a transaction
  int timeout_ms = 0;    // the client's deadline; 0: SimConfig::store_timeout_ms
  std::string what;      // for the trace
};

struct StoreReply {
  std::optional<Error> error;  // kTimeout: sent, but the outcome is unknown
  TxnResult txn;
  RangeResult range;  // a read's
};
using StoreDone = std::function<void(const StoreReply&)>;

enum class FenceState { kPending, kOff, kFailed };

// Agent failures a schedule injects into operations.
enum class OpFault { kStartFails, kStopHangs, kPromoteFails };

class SimWorld {
 public:
  virtual ~SimWorld() = default;
  virtual int64_t now_ms() const = 0;
  virtual Rng& rng() = 0;
  virtual Trace& trace() = 0;
  virtual Processes& processes() = 0;
  virtual const SimConfig& config() const = 0;

  // A heartbeat datagram from node `from` (d.address is the receiver's name).
  virtual void send(int from, const Datagram& d) = 0;
  // A store call of one daemon life; `done` runs when the reply reaches that
  // daemon, and never if it died meanwhile.
  virtual void store_call(int node, uint64_t incarnation, StoreRequest request, StoreDone done) = 0;
  // A fence agent run for `target` on behalf of a daemon life.
  virtual uint64_t begin_fence(int caller, uint64_t incarnation, const std::string& target) = 0;
  // The state of a fence call; a final state is reported once.
  virtual FenceState fence_state(uint64_t call) = 0;

  // The node's watchdog device was opened or fed (AgentService).
  virtual void feed_watchdog(int node) = 0;
  // True when this operation should fail the given way (consumes the fault).
  virtual bool inject(int node, const std::string& resource, OpFault fault) = 0;
};

}  // namespace bulwark::sim
