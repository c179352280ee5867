// One placement step of the coordinator as a pure function: from what the
// coordinator knows (the cluster state from the store, its membership view,
// which lost nodes a fence agent confirmed off) to what it should do now:
// fence nodes, and at most one store write (void the status of lost nodes
// known off, commit a new placement computed on it, or both in one
// transaction), with the compares that make it safe. Coordinator
// carries it out against etcd; the deterministic simulation against its
// simulated store.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/placement_policy.h"
#include "membership/membership.h"
#include "store/etcd_client.h"
#include "store/schema.h"

namespace bulwark {

struct PlacementStepInput {
  const ClusterState* state = nullptr;
  const MembershipView* view = nullptr;
  int64_t epoch = 0;          // of the coordinator
  int lease_margin_ms = 100;  // see CoordinatorOptions
  // With a fence agent, a lost node's exclusive resources count as stopped
  // only once it is fenced: a crashed daemon may have left them running,
  // which no lease can tell.
  bool fencing = false;
  // Lost node -> the incarnation (daemon life) a fence agent confirmed off:
  // only a status record that life wrote is voided. (A record of a later
  // life is not, even if the fence ended that life too: which lives a late
  // confirmation covers cannot be known, and the node is fenced again.)
  std::map<std::string, uint64_t> fenced;
  // Nodes a fence call is under way for: nothing is placed on them
  // (PolicyNode::fencing).
  std::set<std::string> fencing_now;
  // The cluster's lease_ms. A fence call is an act on another node that no
  // store compare guards, so it is asked for only while this coordinator's
  // own lease has at least half of it left: its majority answered clearly
  // later than the lost node last did. A coordinator that is itself being
  // cut off sees its peers go offline just as its own lease runs out, and
  // must not power off a node of the majority. 0: no such check.
  int lease_ms = 0;
  // Without fencing, with a watchdog on every node: a lost node that stopped
  // feeding it at its lease's end at the latest has been reset this long
  // after (0: no watchdog).
  int watchdog_ms = 0;
  // Node -> when this node first saw that node's status record at its
  // current revision (local mono ms; see record_seen below). A lease lapse
  // proves that a node held no lease from lease_bound_ms to
  // answers_known_until_ms, not that it holds none now: it may have taken
  // a new lease since, claimed and started an exclusive resource, and that
  // claim may be what the record shows. A record is counted stopped on a
  // lapse only if it was seen before answers_known_until_ms (its claims
  // were made under the lease that lapsed). Without an entry: never.
  std::map<std::string, int64_t> record_seen_ms;
};

// Keeps `seen` (node -> {record revision, first seen}) current with the
// status records of `state`, at local time `now_ms`.
void record_seen(const ClusterState& state, int64_t now_ms,
                 std::map<std::string, std::pair<int64_t, int64_t>>& seen);

struct StoreWrite {
  std::vector<Compare> compares;  // besides the coordinator epoch
  std::vector<TxnOp> ops;
  std::vector<std::string> log;  // one line per change, for the log
};

struct PlacementStep {
  std::string waiting_for;         // why placement is on hold; empty if it is not
  std::vector<std::string> fence;  // nodes to fence now
  // Why, for the log, where it is not that the node is lost.
  std::map<std::string, std::string> fence_reasons;
  std::optional<StoreWrite> write;
};

// The placement policy's inputs from the cluster state and a membership
// view, as the coordinator computes them; `held` says why the coordinator
// would place nothing now (a node that has not probed, a restarted node
// not yet back), empty if nothing holds it. `bulwark apply --dry-run` and
// `resource move` use them to say what the coordinator would do.
struct PolicyInputs {
  PolicyInput input;  // input.config points to the config given
  std::string held;
};
PolicyInputs policy_inputs(const ClusterState& state, const MembershipView& view,
                           const ResourceConfig& config);

// True when `name` (not this node) can no longer run anything exclusive by
// the membership layer's proof that its lease lapsed.
bool lease_lapsed(const MembershipView& view, const std::string& name, int64_t margin_ms);

PlacementStep plan_placement(const PlacementStepInput& in, const Schema& schema);

}  // namespace bulwark
