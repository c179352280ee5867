// The quorum lease (DESIGN.md layer 2). A node holds the lease while it has
// had a completed round trip with a majority of the configured nodes (itself
// included) whose request left within the last lease_ms. Because the lease
// is measured from when *our* ping left, the peer's answer proves the peer was
// alive at some point after that moment; nothing is assumed about clocks on
// other nodes. Pure logic: the caller passes time in.
//
// Thread-safety: none; the owner serialises calls.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace bulwark {

class QuorumLease {
 public:
  explicit QuorumLease(int64_t lease_ms) : lease_ms_(lease_ms) {}

  // The configured members (including, normally, `self`). Forgets round trips
  // of nodes that are no longer members.
  void set_members(const std::set<std::string>& members, const std::string& self);

  // A pong for a ping we sent at `ping_sent_ms` arrived from `peer`.
  void on_round_trip(const std::string& peer, int64_t ping_sent_ms);

  bool holds(int64_t now_ms) const { return expires_ms() > now_ms; }
  // The moment the lease ends if no further round trip completes; a value
  // at or before now means it is not held. INT64_MAX for a one-node cluster.
  int64_t expires_ms() const;
  // Members other than self with a round trip inside the lease window.
  std::vector<std::string> reachable(int64_t now_ms) const;
  // How many members (self included) make a majority.
  int majority() const { return static_cast<int>(members_.size()) / 2 + 1; }
  bool is_member() const { return self_member_; }
  const std::set<std::string>& members() const { return members_; }
  int64_t lease_ms() const { return lease_ms_; }
  // Send time of the newest ping `peer` answered, or -1 if none.
  int64_t last_round_trip_ms(const std::string& peer) const;

 private:
  int64_t lease_ms_;
  std::set<std::string> members_;
  bool self_member_ = false;
  std::string self_;
  std::map<std::string, int64_t> last_sent_;  // peer -> newest answered ping's send time
};

}  // namespace bulwark
