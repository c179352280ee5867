// Membership: the heartbeat protocol as a pure state machine. The owner feeds
// it received datagrams and calls tick() when next_tick_ms() arrives; it
// returns the datagrams to send. Time comes from the injected Clock, so the
// same code runs under the deterministic simulation and in bulwarkd.
//
// Every heartbeat_ms each node pings every other configured node; a peer
// answers each authentic ping with a pong echoing it. A completed round trip
// feeds the QuorumLease. A peer is "online" while it has a round trip inside
// the lease window.
//
// Lease bounds (DESIGN.md invariant 1). The coordinator may re-place the
// exclusive resources of an unreachable member X only once X has lost its
// quorum lease, because X stops them when it loses it. Every round trip that
// extends X's lease is a ping of X that another member Q answered at or after
// the moment the ping left, and the lease it gives ends lease_ms after that
// moment: so never later than lease_ms after Q's answer. Each node therefore
// records when it last answered each member, and every pong carries the age
// of those records (heartbeat.h). A pong of Q that we receive at local time r,
// answering our ping that left at c, tells us for each member X that Q
// answered X last no later than r - age, and not again up to c, because Q
// built the pong after our ping reached it. We say Q's answers to X are
// "known until" c.
//
// MemberStatus::lease_bound_ms of X is lease_ms after the latest answer to X
// we know of: our own and every peer's report, stale reports included (a
// later bound is only more conservative). It is NOT a proof on its own: a
// peer may have answered X after its newest report to us, and X may hold a
// lease through an answer we have not heard of yet; "X is gone once
// now >= lease_bound_ms, while this node holds the lease" is unsafe even
// though X's majority meets ours, because the peer in both may have answered
// X after it last answered us (test LeaseBoundAloneIsNoProofWhileAReportLags).
//
// MemberStatus::answers_known_until_ms closes that gap: the latest local time
// K such that we know, up to K, the answers to X of a set S of members other
// than X that has members - majority + 1 of them (our own answers are known
// up to now). Every majority X can hold the lease with has at least
// majority - 1 members besides X, so it contains a member of S. If
// lease_bound_ms <= K, X held no quorum lease at any moment T in
// [lease_bound_ms, K]: its majority at T would contain some Q in S that
// answered a ping of X that left after T - lease_ms, so at a time in
// (T - lease_ms, T]; but we know Q's answers to X up to K >= T, and the last
// of them was at or before lease_bound_ms - lease_ms <= T - lease_ms. This
// proof needs no lease of this node (S is checked directly), but the
// coordinator still acts on it only while it holds the lease, for the sake
// of its own writes.
//
// Assumptions: all nodes configure the same members; monotonic clocks run at
// the same rate up to the margin by which a node stops its exclusive
// resources before its own lease ends (ages and times are whole ms, so a
// bound may be early by up to 2 ms). Nothing here stops X from taking a new
// lease later, when a link heals: what X may then start is for the placement
// in the store to decide.
//
// Thread-safety: none; MembershipService serialises calls.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/env.h"
#include "membership/heartbeat.h"
#include "membership/quorum_lease.h"

namespace bulwark {

struct PeerEndpoint {
  std::string name;
  std::string address;
  int port = 0;
};

struct Datagram {
  std::string address;
  int port = 0;
  std::vector<uint8_t> bytes;
};

struct MemberStatus {
  std::string name;
  bool self = false;
  bool online = false;
  int64_t last_contact_ago_ms = -1;  // since the newest answered ping left; -1: never
  int64_t rtt_ms = -1;               // of the newest round trip; -1: none
  bool peer_holds_lease = false;     // as the peer said in its last pong
  bool peer_sees_watched = false;    // the peer reaches the watched node (its last pong)
  // The member's process incarnation (random per daemon start), from its
  // last counted pong; for self, our own; 0 if none yet. Tells a record the
  // member wrote in this life from one it left in an earlier one.
  uint64_t incarnation = 0;
  // The member's daemon started (a new incarnation answered) within the
  // last 2 lease_ms and it holds no lease yet: it is rejoining, and what it
  // runs will be adopted, so nothing of it should move meanwhile.
  bool rejoining = false;
  // Local mono ms. lease_ms after the latest answer to this member's pings
  // that this node knows of; for self, when the own lease ends or ended
  // (INT64_MAX in a one-node cluster, INT64_MIN if never held or not a
  // member). See "Lease bounds" above: by itself no proof that the member's
  // lease has ended.
  int64_t lease_bound_ms = std::numeric_limits<int64_t>::min();
  // Local mono ms up to which this node knows the answers to this member of
  // enough other members to meet each of its possible majorities; INT64_MIN
  // while it does not; for self, now.
  int64_t answers_known_until_ms = std::numeric_limits<int64_t>::min();

  // True once this node can prove that the member held no quorum lease at any
  // moment from lease_bound_ms to answers_known_until_ms, and so had stopped
  // the exclusive resources it ran. It may have taken a new lease since.
  bool lease_lapse_proven() const { return lease_bound_ms <= answers_known_until_ms; }
};

struct MembershipView {
  bool is_member = false;
  bool holds_lease = false;
  int64_t lease_remaining_ms = 0;  // 0 when not held
  int majority = 0;
  std::vector<MemberStatus> members;   // sorted by name
  std::vector<std::string> reachable;  // online peers (self excluded)
  uint64_t rejected_datagrams = 0;     // failed authentication, replays, strangers

  const MemberStatus* find(const std::string& name) const;
};

class Membership {
 public:
  Membership(const Clock& clock, std::string cluster, std::string self, std::string secret,
             int heartbeat_ms, int lease_ms, uint64_t incarnation);

  // All configured members, self included (self's address is not used).
  void set_members(const std::vector<PeerEndpoint>& members);
  // The node whose reachability this node reports to its peers (the
  // coordinator); empty for none.
  void set_watched(const std::string& name) { watched_ = name; }
  std::vector<Datagram> tick();
  std::optional<Datagram> receive(std::span<const uint8_t> bytes);
  MembershipView view() const;
  int64_t next_tick_ms() const { return next_tick_ms_; }
  const std::string& self() const { return self_; }

 private:
  struct PendingPing {
    std::string peer;
    int64_t sent_ms;
  };
  // What one peer's answer reports told us about its answers to one member.
  struct ReportedAnswers {
    // The peer answered that member's pings last no later than this.
    int64_t answered_bound_ms = 0;
    // ... and not again before this (send time of our ping whose pong
    // carried the newest report).
    int64_t known_until_ms = 0;
  };
  struct PeerState {
    PeerEndpoint endpoint;
    int64_t rtt_ms = -1;
    bool holds_lease = false;
    bool sees_watched = false;
    uint64_t incarnation = 0;          // of its last counted pong
    int64_t incarnation_since_ms = 0;  // local mono ms it was first counted
    // When we last answered an authentic ping of this peer; until the first,
    // when it became a member (we cannot prove we never answered it before).
    int64_t last_answered_ms = 0;
    std::map<std::string, ReportedAnswers> reported;  // by member name
  };
  uint16_t my_flags(int64_t now) const;
  std::vector<AnswerReport> answer_report(int64_t now_ms) const;
  void record_report(PeerState& peer, const Heartbeat& pong, int64_t now_ms, int64_t ping_sent_ms);
  void fill_lease_bound(MemberStatus& m, int64_t now_ms) const;

  void prune_pending(int64_t now_ms);

  const Clock& clock_;
  std::string cluster_;
  std::string self_;
  HmacSha256 mac_;  // keyed with the cluster secret
  int heartbeat_ms_;
  uint64_t incarnation_;
  uint64_t next_seq_ = 1;
  int64_t next_tick_ms_ = 0;
  QuorumLease lease_;
  std::map<std::string, PeerState> peers_;   // excludes self
  std::map<uint64_t, PendingPing> pending_;  // our unanswered pings by seq
  // Every member (self included) by heartbeat_name_hash(); more than one name
  // under a hash is a collision.
  std::map<uint32_t, std::vector<std::string>> members_by_hash_;
  uint64_t rejected_ = 0;
  std::string watched_;
};

}  // namespace bulwark
