// The coordinator role (DESIGN.md layer 3). Every node runs one; it acts only
// while its node holds the coordinator epoch and the quorum lease. Each write
// it makes is conditioned on its epoch, so a paused or cut-off former
// coordinator changes nothing when it wakes up.
//
// Duties: initialise the cluster state from the founding nodes, publish node
// liveness, and place the resources: run the placement policy on the
// current inputs and commit its result when it differs from the committed
// placement.
//
// Thread-safety: called from the daemon's control thread only; the getters
// are safe from any thread.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/epoch_policy.h"
#include "coordinator/fencer.h"
#include "core/env.h"
#include "store/store.h"
#include "store/store_writes.h"

namespace bulwark {

struct CoordinatorStats {
  bool acting = false;
  int64_t epoch = 0;
  int64_t claims = 0;          // epochs this node took
  int64_t refused_writes = 0;  // writes refused because the epoch was superseded
  int64_t writes = 0;          // committed coordinator writes
  int64_t placements = 0;      // placement records committed
  std::string waiting_for;     // why placement is on hold, empty if it is not
};

struct CoordinatorOptions {
  // After the newest moment a node can have held its quorum lease (as the
  // membership layer bounds it), this much longer before its exclusive
  // resources are placed elsewhere: covers clock rate differences and the
  // node's final SIGKILL.
  int lease_margin_ms = 100;
  int lease_ms = 0;       // the cluster's; see PlacementStepInput::lease_ms
  FencingConfig fencing;  // no command: no fencing
  std::map<std::string, std::map<std::string, std::string>> fence_params;  // per node
  int watchdog_ms = 0;  // every node's watchdog timeout; 0: no watchdog
  // The membership layer has heard from its peers (is "settled") this long
  // after the daemon started (its monotonic clock): a lease and a heartbeat.
  int64_t started_mono_ms = 0;
  int settle_ms = 0;
};

class Coordinator {
 public:
  // What it touches comes in as interfaces: bulwarkd passes etcd's writes,
  // its Store (the cache) and child processes for fence agents; the
  // simulation (tests/sim) passes its simulated ones.
  Coordinator(const Clock& clock, StoreWrites& writes, CacheWait& cache, FenceLauncher& fence,
              std::string self, std::vector<NodeRecord> founding_nodes,
              CoordinatorOptions options = {});
  // True when `name` (not this node) can no longer run anything exclusive:
  // its lease has ended everywhere, by the membership layer's bound.
  bool safe_to_replace(const MembershipView& view, const std::string& name) const;

  // The control loop calls tick() this often.
  static constexpr int kTickMs = 20;
  // The node whose reachability peers report to each other (the membership
  // layer's watched node): the coordinator in `state`, if any.
  static std::string watched(const ClusterState& state);
  // One tick of the daemon's control loop: steps the role when one of its
  // inputs changed (the state's revision, the lease, who is online and
  // lease-bound, whether membership settled), at least every 100 ms (failed
  // claims are retried on that beat), and on every tick while the last
  // step asked for it (after a write, while a fence call runs).
  void tick(const ClusterState& state, const MembershipView& view);

  // One step of the role. Returns true when it wants to be stepped again at
  // once even if nothing changes: a claim failed and should be retried, a
  // write committed and its follow-up should not wait, or a fence call
  // runs and its confirmation is what a failover waits for.
  bool step(const MembershipView& view, const ClusterState& state, bool membership_settled);
  CoordinatorStats stats() const;

 private:
  // The quorum lease under which `view` was taken still runs. A step takes
  // time (each write may wait for etcd, then for the cache), so every write
  // asks again before it is sent: no coordinator write leaves a node
  // without the lease (DESIGN.md invariant 3; the epoch compare makes a
  // late one harmless, this makes it not happen).
  bool lease_runs(const MembershipView& view) const;
  // These return true when the role should be stepped again at once.
  bool act(const MembershipView& view, const ClusterState& state);
  void on_write_failed(const Error& e);
  void publish_liveness(const MembershipView& view, const ClusterState& state);
  bool place(const MembershipView& view, const ClusterState& state);
  void set_waiting(const std::string& why);

  const Clock& clock_;
  StoreWrites& writes_;
  CacheWait& cache_;
  std::string self_;
  std::vector<NodeRecord> founding_nodes_;
  CoordinatorOptions options_;
  Fencer fencer_;
  std::optional<CoordinatorRecord> mine_;
  // Node -> {status record revision, when first seen} (record_seen()).
  std::map<std::string, std::pair<int64_t, int64_t>> record_seen_;
  std::string last_inputs_;  // tick(): the inputs of the last step
  int64_t next_step_ms_ = 0;
  int64_t next_claim_mono_ms_ = 0;
  int64_t claim_backoff_ms_ = 0;
  int64_t claim_failures_ = 0;

  mutable std::mutex mu_;  // guards stats_
  CoordinatorStats stats_;
};

}  // namespace bulwark
