// What applying a resources file would change, for `bulwark apply` (which
// lists it, and with --dry-run only lists it): a pure function of the
// cluster state, a membership view and the new file. Placement is the
// coordinator's own policy run twice on the same inputs, once with the
// applied file and once with the new one, so that the difference is the
// file's doing and not a node that happens to be down; definition changes
// are the node agent's own rule (core/resource_change.h).
#pragma once

#include <string>
#include <vector>

#include "membership/membership.h"
#include "store/schema.h"

namespace bulwark {

struct PlannedChange {
  std::string resource;
  // start, stop, move, restart, reload, update, promote, demote, add
  // (a new resource placed nowhere), delete.
  std::string action;
  std::vector<std::string> nodes;  // where (move: the node it moves to)
  std::vector<std::string> from;   // move: where it runs now
  std::string detail;              // why, for people
};

// `next` must carry its agents' reload traits (AgentSpec::reload).
std::vector<PlannedChange> plan_apply(const ClusterState& state, const MembershipView& view,
                                      const ResourceConfig& next);

}  // namespace bulwark
