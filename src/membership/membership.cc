#include "membership/membership.h"

#include <algorithm>
#include <limits>
#include <set>

namespace bulwark {

namespace {
// Upper bound on remembered unanswered pings, whatever the cluster size: the
// table must never grow without bound when peers stay silent.
constexpr std::size_t kPendingMax = 4096;
}  // namespace

const MemberStatus* MembershipView::find(const std::string& name) const {
  for (const auto& m : members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Membership::Membership(const Clock& clock, std::string cluster, std::string self,
                       std::string secret, int heartbeat_ms, int lease_ms, uint64_t incarnation)
    : clock_(clock),
      cluster_(std::move(cluster)),
      self_(std::move(self)),
      mac_(std::span(reinterpret_cast<const uint8_t*>(secret.data()), secret.size())),
      heartbeat_ms_(heartbeat_ms),
      incarnation_(incarnation),
      lease_(lease_ms) {}

void Membership::set_members(const std::vector<PeerEndpoint>& members) {
  std::set<std::string> names;
  std::map<std::string, PeerState> next;
  for (const auto& m : members) {
    names.insert(m.name);
    if (m.name == self_) continue;
    PeerState st;
    if (auto it = peers_.find(m.name); it != peers_.end()) st = it->second;
    st.endpoint = m;
    next[m.name] = st;
  }
  peers_ = std::move(next);
  lease_.set_members(names, self_);
}

std::vector<Datagram> Membership::tick() {
  const int64_t now = clock_.mono_ms();
  std::vector<Datagram> out;
  if (now < next_tick_ms_) return out;
  next_tick_ms_ = now + heartbeat_ms_;
  prune_pending(now);
  const uint16_t flags = my_flags(now);
  for (const auto& [name, peer] : peers_) {
    Heartbeat hb;
    hb.type = HeartbeatType::kPing;
    hb.flags = flags;
    hb.incarnation = incarnation_;
    hb.seq = next_seq_++;
    hb.cluster = cluster_;
    hb.sender = self_;
    hb.receiver = name;
    // Full table: forget the oldest ping (lowest seq), never the newest, so
    // that live peers' answers keep counting whatever dead peers leave.
    if (pending_.size() >= kPendingMax) pending_.erase(pending_.begin());
    pending_[hb.seq] = PendingPing{name, now};
    out.push_back(Datagram{peer.endpoint.address, peer.endpoint.port, encode_heartbeat(hb, mac_)});
  }
  return out;
}

std::optional<Datagram> Membership::receive(std::span<const uint8_t> bytes) {
  const int64_t now = clock_.mono_ms();
  const auto hb = decode_heartbeat(bytes, mac_);
  if (!hb || hb->cluster != cluster_ || hb->receiver != self_) {
    ++rejected_;
    return std::nullopt;
  }
  const auto peer = peers_.find(hb->sender);
  if (peer == peers_.end()) {
    ++rejected_;  // authentic, but from a node that is not (or no longer) a member
    return std::nullopt;
  }
  if (hb->type == HeartbeatType::kPing) {
    Heartbeat pong;
    pong.type = HeartbeatType::kPong;
    pong.flags = my_flags(now);
    pong.incarnation = incarnation_;
    pong.seq = next_seq_++;
    pong.echo_incarnation = hb->incarnation;
    pong.echo_seq = hb->seq;
    pong.cluster = cluster_;
    pong.sender = self_;
    pong.receiver = hb->sender;
    // Answer the configured address, never the datagram's source: a forged
    // source address must not turn us into a reflector.
    return Datagram{peer->second.endpoint.address, peer->second.endpoint.port,
                    encode_heartbeat(pong, mac_)};
  }
  // A pong counts once, only for a ping of this incarnation still pending.
  const auto pending = pending_.find(hb->echo_seq);
  if (hb->echo_incarnation != incarnation_ || pending == pending_.end() ||
      pending->second.peer != hb->sender) {
    ++rejected_;
    return std::nullopt;
  }
  const int64_t sent = pending->second.sent_ms;
  pending_.erase(pending);
  lease_.on_round_trip(hb->sender, sent);
  peer->second.rtt_ms = now - sent;
  peer->second.holds_lease = (hb->flags & kFlagHoldsLease) != 0;
  peer->second.sees_watched = (hb->flags & kFlagSeesWatched) != 0;
  return std::nullopt;
}

uint16_t Membership::my_flags(int64_t now) const {
  uint16_t flags = lease_.holds(now) ? kFlagHoldsLease : 0;
  if (!watched_.empty()) {
    const int64_t last = lease_.last_round_trip_ms(watched_);
    if (watched_ == self_ || (last >= 0 && last + lease_.lease_ms() > now))
      flags |= kFlagSeesWatched;
  }
  return flags;
}

void Membership::prune_pending(int64_t now_ms) {
  // A ping older than the lease can no longer extend it; forget it.
  for (auto it = pending_.begin(); it != pending_.end();) {
    it = (now_ms - it->second.sent_ms > lease_.lease_ms()) ? pending_.erase(it) : std::next(it);
  }
}

MembershipView Membership::view() const {
  const int64_t now = clock_.mono_ms();
  MembershipView v;
  v.is_member = lease_.is_member();
  const int64_t expires = lease_.expires_ms();
  v.holds_lease = expires > now;
  v.lease_remaining_ms =
      !v.holds_lease
          ? 0
          : (expires == std::numeric_limits<int64_t>::max() ? lease_.lease_ms() : expires - now);
  v.majority = lease_.majority();
  v.reachable = lease_.reachable(now);
  v.rejected_datagrams = rejected_;
  for (const auto& name : lease_.members()) {
    MemberStatus m;
    m.name = name;
    if (name == self_) {
      m.self = true;
      m.online = true;
      m.last_contact_ago_ms = 0;
    } else {
      const int64_t last = lease_.last_round_trip_ms(name);
      m.last_contact_ago_ms = last < 0 ? -1 : now - last;
      m.online = last >= 0 && last + lease_.lease_ms() > now;
      if (auto it = peers_.find(name); it != peers_.end()) {
        m.rtt_ms = it->second.rtt_ms;
        m.peer_holds_lease = it->second.holds_lease;
        m.peer_sees_watched = it->second.sees_watched;
      }
    }
    v.members.push_back(m);
  }
  return v;
}

}  // namespace bulwark
