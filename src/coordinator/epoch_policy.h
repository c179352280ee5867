// When may this node take the coordinator epoch? A pure function of what the
// node knows, so it is unit-tested exhaustively and replayed by the
// simulation. Taking the epoch is always a compare-and-swap on the record the
// node saw, so two nodes deciding "claim" at once still yield one holder;
// this function only keeps nodes from claiming needlessly.
#pragma once

#include <optional>
#include <string>

#include "membership/membership.h"
#include "store/schema.h"

namespace bulwark {

enum class EpochAction {
  kNone,   // somebody else healthy coordinates, or we may not act
  kClaim,  // take the epoch (record absent, holder gone, or our own stale record)
  kAct,    // we hold the current epoch: do the coordinator's work
};

struct EpochInputs {
  std::string self;
  MembershipView view;
  std::optional<CoordinatorRecord> record;  // as the cache sees it
  int64_t my_token = 0;                     // mod_revision of the epoch we took, 0 if none
  bool store_loaded = false;
  bool membership_settled = false;  // running for at least one lease: silence means absence
};

EpochAction decide_epoch_action(const EpochInputs& in);

}  // namespace bulwark
