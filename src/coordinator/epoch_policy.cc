#include "coordinator/epoch_policy.h"

namespace bulwark {

EpochAction decide_epoch_action(const EpochInputs& in) {
  // Without the quorum lease a node may neither act nor claim: it may be the
  // cut-off minority, and its view of who is alive is worthless.
#ifdef BULWARK_MUTATION_NO_LEASE_CHECK
  // A deliberate bug, compiled only into tests/sim's mutation check: the
  // role acts without the lease. The simulation must catch it (invariant 3).
  if (!in.store_loaded || !in.view.is_member) return EpochAction::kNone;
#else
  if (!in.store_loaded || !in.view.is_member || !in.view.holds_lease) return EpochAction::kNone;
#endif
  // Our own claim is newer than what the cache shows: the watch has not
  // delivered it yet. The claim stands (our writes are conditioned on it).
  if (in.my_token > 0 && (!in.record || in.record->mod_revision < in.my_token))
    return EpochAction::kAct;
  if (!in.record) return EpochAction::kClaim;
  const CoordinatorRecord& rec = *in.record;
  if (rec.node == in.self) {
    // Our own record with our token: we coordinate. Our name without our
    // token is a previous life of this daemon: bump the epoch to fence it.
    return rec.mod_revision == in.my_token ? EpochAction::kAct : EpochAction::kClaim;
  }
  const MemberStatus* holder = in.view.find(rec.node);
  if (holder == nullptr) return EpochAction::kClaim;  // holder was removed from the cluster
  // A peer we have not heard from may simply not have answered yet right
  // after our start; only a settled view may declare it gone.
  if (holder->online || !in.membership_settled) return EpochAction::kNone;
  // Our link to the holder may be what failed, not the holder: claim only
  // when a majority of the members (us and the peers we reach, by what
  // their last answers said) cannot reach it. Otherwise a single cut link
  // would make two nodes take the epoch from each other forever.
  int cannot_reach = 1;  // ourselves
  for (const auto& m : in.view.members) {
    if (!m.self && m.online && m.name != rec.node && !m.peer_sees_watched) ++cannot_reach;
  }
  return cannot_reach >= in.view.majority ? EpochAction::kClaim : EpochAction::kNone;
}

}  // namespace bulwark
