// The placement policy: a pure, deterministic function from (resources
// file, node states, what runs where, fail counts, operator moves and bans)
// to where every resource should run. The coordinator commits its result
// conditioned on its epoch, so a new coordinator computes the same answer
// from the same inputs and restarts nothing that runs correctly.
//
// Safety (DESIGN.md invariant 1) is part of the function, not of its
// caller: an exclusive resource (singleton, group, promoted instance) that
// still runs on a node that may still be running it (not online, but neither
// fenced nor past its lease) stays assigned there and nowhere else.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/resource_config.h"

namespace bulwark {

struct PolicyNode {
  std::string name;
  std::map<std::string, std::string> attributes;
  bool online = true;    // holds the quorum lease and is reachable
  bool standby = false;  // the operator evacuates it
  // Offline nodes only: its lease has expired everywhere or a fence agent
  // confirmed it off, so nothing it ran can still be running.
  bool safe_to_replace = false;
  // Offline nodes only: not heard from lately, but its lease has not
  // provably lapsed and it was not fenced: perhaps a blip of the network.
  // Its clone instances stay placed there (not for safety: clones are not
  // exclusive, but to spare them a restart).
  bool may_be_up = false;
  // A fence call for it is under way (Pacemaker's "unclean" node): what it
  // may run still counts, but nothing is placed on it, so that a life it
  // boots meanwhile starts nothing the fence would end, and is not fenced
  // again for it.
  bool fencing = false;
};

struct RunningInstance {
  std::string node;
  bool promoted = false;
};

struct PolicyInput {
  const ResourceConfig* config = nullptr;
  std::vector<PolicyNode> nodes;
  // Observed: where each resource runs now (failed instances excluded).
  std::map<std::string, std::vector<RunningInstance>> running;
  // Failures per resource and node (already aged by failure_timeout_ms).
  std::map<std::string, std::map<std::string, int>> fail_counts;
  std::map<std::string, std::string> moves;           // resource -> node (`resource move`)
  std::map<std::string, std::set<std::string>> bans;  // resource -> nodes (`resource ban`)
  std::set<std::string> disabled;                     // `resource disable`
};

struct ResourcePlacement {
  std::vector<std::string> nodes;     // sorted; empty: stopped everywhere
  std::vector<std::string> promoted;  // promotable: subset of nodes
  std::string reason;                 // why it is not (fully) placed; empty when it is
};

struct Placement {
  std::map<std::string, ResourcePlacement> resources;  // by resource name (groups expanded)
};

Placement compute_placement(const PolicyInput& input);

// Why `resource` (or the group it belongs to) would not run on `node` with
// these inputs, for `resource move` to refuse with a reason: "banned
// from n2", "colocated apart from app, which runs on n2", ...; empty when
// nothing keeps it off `node`.
std::string placement_obstacle(const PolicyInput& input, const std::string& resource,
                               const std::string& node);

}  // namespace bulwark
