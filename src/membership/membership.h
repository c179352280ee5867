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
// Thread-safety: none; MembershipService serialises calls.
#pragma once

#include <cstdint>
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
  struct PeerState {
    PeerEndpoint endpoint;
    int64_t rtt_ms = -1;
    bool holds_lease = false;
    bool sees_watched = false;
  };
  uint16_t my_flags(int64_t now) const;

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
  uint64_t rejected_ = 0;
  std::string watched_;
};

}  // namespace bulwark
