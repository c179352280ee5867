#include "membership/quorum_lease.h"

#include <algorithm>
#include <limits>

namespace bulwark {

void QuorumLease::set_members(const std::set<std::string>& members, const std::string& self) {
  members_ = members;
  self_ = self;
  self_member_ = members_.count(self) > 0;
  for (auto it = last_sent_.begin(); it != last_sent_.end();) {
    it = members_.count(it->first) ? std::next(it) : last_sent_.erase(it);
  }
}

void QuorumLease::on_round_trip(const std::string& peer, int64_t ping_sent_ms) {
  if (!members_.count(peer) || peer == self_) return;
  auto& last = last_sent_[peer];
  last = std::max(last, ping_sent_ms);
}

int64_t QuorumLease::expires_ms() const {
  // A node that is not a member never holds the lease: it must not count
  // itself towards anybody's majority.
  if (!self_member_) return std::numeric_limits<int64_t>::min();
  const int peers_needed = majority() - 1;
  if (peers_needed <= 0) return std::numeric_limits<int64_t>::max();
  std::vector<int64_t> sent;
  sent.reserve(last_sent_.size());
  for (const auto& [peer, t] : last_sent_) sent.push_back(t);
  if (static_cast<int>(sent.size()) < peers_needed) return std::numeric_limits<int64_t>::min();
  std::sort(sent.begin(), sent.end(), std::greater<>());
  return sent[peers_needed - 1] + lease_ms_;
}

std::vector<std::string> QuorumLease::reachable(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const auto& [peer, t] : last_sent_) {
    if (t + lease_ms_ > now_ms) out.push_back(peer);
  }
  return out;
}

int64_t QuorumLease::last_round_trip_ms(const std::string& peer) const {
  const auto it = last_sent_.find(peer);
  return it == last_sent_.end() ? -1 : it->second;
}

}  // namespace bulwark
