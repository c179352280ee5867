// The coordinator role (DESIGN.md layer 3). Every node runs one; it acts only
// while its node holds the coordinator epoch and the quorum lease. Each write
// it makes is conditioned on its epoch, so a paused or cut-off former
// coordinator changes nothing when it wakes up.
//
// Duties so far: initialise the cluster state from the founding nodes, and
// publish node liveness (the policy input later issues build on).
//
// Thread-safety: called from the daemon's control thread only; the getters
// are safe from any thread.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/epoch_policy.h"
#include "core/env.h"
#include "store/store.h"

namespace bulwark {

struct CoordinatorStats {
  bool acting = false;
  int64_t epoch = 0;
  int64_t claims = 0;          // epochs this node took
  int64_t refused_writes = 0;  // writes refused because the epoch was superseded
  int64_t writes = 0;          // committed coordinator writes
};

class Coordinator {
 public:
  Coordinator(const Clock& clock, Store& store, std::string self,
              std::vector<NodeRecord> founding_nodes);

  // One step of the role. Returns true when it wants to be stepped again at
  // once even if nothing changes (a claim failed and should be retried).
  bool step(const MembershipView& view, const ClusterState& state, bool membership_settled);
  CoordinatorStats stats() const;

 private:
  void act(const MembershipView& view, const ClusterState& state);
  void on_write_failed(const Error& e);

  const Clock& clock_;
  Store& store_;
  std::string self_;
  std::vector<NodeRecord> founding_nodes_;
  std::optional<CoordinatorRecord> mine_;
  int64_t next_claim_mono_ms_ = 0;
  int64_t claim_backoff_ms_ = 0;
  int64_t claim_failures_ = 0;

  mutable std::mutex mu_;  // guards stats_
  CoordinatorStats stats_;
};

}  // namespace bulwark
