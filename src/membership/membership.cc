#include "membership/membership.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <set>

#include "core/check.h"

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
  const int64_t now = clock_.mono_ms();
  std::set<std::string> names;
  std::map<std::string, PeerState> next;
  for (const auto& m : members) {
    names.insert(m.name);
    if (m.name == self_) continue;
    PeerState st;
    if (auto it = peers_.find(m.name); it != peers_.end()) {
      st = it->second;
    } else {
      // A member we did not know may have been answered by an earlier run of
      // this node; from now on every answer is recorded.
      st.last_answered_ms = now;
    }
    st.endpoint = m;
    next[m.name] = st;
  }
  // A member that leaves and comes back starts afresh, also in the reports
  // of others: nothing learnt about it before its removal is kept.
  for (auto& [name, st] : next) {
    std::erase_if(st.reported, [&](const auto& r) { return names.count(r.first) == 0; });
  }
  peers_ = std::move(next);
  members_by_hash_.clear();
  for (const auto& name : names) members_by_hash_[heartbeat_name_hash(name)].push_back(name);
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
    // Recorded before the pong leaves, and whether or not it arrives: the
    // sender's lease may be extended by this answer.
    peer->second.last_answered_ms = now;
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
    pong.answers = answer_report(now);
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
  if (peer->second.incarnation != hb->incarnation) peer->second.incarnation_since_ms = now;
  peer->second.incarnation = hb->incarnation;
  peer->second.holds_lease = (hb->flags & kFlagHoldsLease) != 0;
  peer->second.sees_watched = (hb->flags & kFlagSeesWatched) != 0;
  record_report(peer->second, *hb, now, sent);
  return std::nullopt;
}

std::vector<AnswerReport> Membership::answer_report(int64_t now_ms) const {
  std::vector<AnswerReport> out;
  for (const auto& [name, peer] : peers_) {
    // Only in clusters larger than DESIGN.md's 16 nodes. Leaving members out
    // is safe: a receiver that learns less can prove less.
    if (out.size() == kHeartbeatAnswersMax) break;
    // A clock that stepped back must not make an answer look older.
    const int64_t age_ms =
        std::clamp<int64_t>(now_ms - peer.last_answered_ms, 0, int64_t{kAnswerAgeMaxMs});
    out.push_back(AnswerReport{heartbeat_name_hash(name), static_cast<uint16_t>(age_ms)});
  }
  return out;
}

void Membership::record_report(PeerState& peer, const Heartbeat& pong, int64_t now_ms,
                               int64_t ping_sent_ms) {
  // The newest answer the report allows for each member it names. A member
  // named twice (a hash two of the sender's members share) keeps the later.
  std::map<std::string, int64_t> answered_ms;
  for (const AnswerReport& a : pong.answers) {
    const auto names = members_by_hash_.find(a.member_hash);
    if (names == members_by_hash_.end()) continue;  // a member we do not know
    // A hash two of our members share: we cannot tell which one the entry is
    // about, so assume each was answered just now. (An age of kAnswerAgeMaxMs
    // means "at least that long ago": taking it as exactly that long ago only
    // moves the bound later.)
    const int64_t age_ms = names->second.size() > 1 ? 0 : a.age_ms;
    for (const auto& name : names->second) {
      if (name == self_ || name == pong.sender) continue;  // not a report about a third node
      auto [it, inserted] = answered_ms.emplace(name, now_ms - age_ms);
      if (!inserted) it->second = std::max(it->second, now_ms - age_ms);
    }
  }
  for (const auto& [name, answered] : answered_ms) {
    auto [it, inserted] = peer.reported.emplace(name, ReportedAnswers{answered, ping_sent_ms});
    if (inserted) continue;
    // Pongs may arrive out of order. Keeping the later of each is sound: an
    // older report's answered bound is earlier, and the newest report alone
    // says the peer did not answer between its bound and its ping.
    it->second.answered_bound_ms = std::max(it->second.answered_bound_ms, answered);
    it->second.known_until_ms = std::max(it->second.known_until_ms, ping_sent_ms);
  }
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
      m.incarnation = incarnation_;
      m.last_contact_ago_ms = 0;
      // Our own lease we know exactly: it has not been held since it ended.
      m.lease_bound_ms = expires;
      m.answers_known_until_ms = now;
    } else {
      const int64_t last = lease_.last_round_trip_ms(name);
      m.last_contact_ago_ms = last < 0 ? -1 : now - last;
      m.online = last >= 0 && last + lease_.lease_ms() > now;
      if (auto it = peers_.find(name); it != peers_.end()) {
        m.rtt_ms = it->second.rtt_ms;
        m.peer_holds_lease = it->second.holds_lease;
        m.peer_sees_watched = it->second.sees_watched;
        m.incarnation = it->second.incarnation;
        m.rejoining = m.online && !m.peer_holds_lease &&
                      now - it->second.incarnation_since_ms < 2 * lease_.lease_ms();
      }
      fill_lease_bound(m, now);
    }
    v.members.push_back(m);
  }
  return v;
}

void Membership::fill_lease_bound(MemberStatus& m, int64_t now_ms) const {
  // X is the member `m` describes; see "Lease bounds" in membership.h for
  // why this is sound.
  const auto x = peers_.find(m.name);
  BW_CHECK(x != peers_.end(), "every member but self has a peer state");
  int64_t answered_ms = x->second.last_answered_ms;
  // Up to when we know each other member's answers to X.
  std::vector<int64_t> known_until_ms;
  for (const auto& q : lease_.members()) {
    if (q == m.name) continue;
    if (q == self_) {
      known_until_ms.push_back(now_ms);
      continue;
    }
    const auto peer = peers_.find(q);
    BW_CHECK(peer != peers_.end(), "every member but self has a peer state");
    const auto it = peer->second.reported.find(m.name);
    if (it == peer->second.reported.end()) {
      known_until_ms.push_back(std::numeric_limits<int64_t>::min());
      continue;
    }
    answered_ms = std::max(answered_ms, it->second.answered_bound_ms);
    known_until_ms.push_back(it->second.known_until_ms);
  }
  m.lease_bound_ms = answered_ms + lease_.lease_ms();
  // A majority X holds the lease with contains at least majority - 1 of the
  // members other than X, so any members - majority + 1 of those include
  // one of them.
  const std::size_t needed =
      lease_.members().size() - static_cast<std::size_t>(lease_.majority()) + 1;
  if (known_until_ms.size() < needed) return;
  std::sort(known_until_ms.begin(), known_until_ms.end(), std::greater<>());
  m.answers_known_until_ms = known_until_ms[needed - 1];
}

}  // namespace bulwark
