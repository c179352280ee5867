// The heartbeat network: datagrams between nodes, each delayed (with rare
// spikes) or dropped at random, over links that a schedule can cut in one
// direction or both. Cuts are counted per link, so overlapping partitions
// heal independently. A datagram in flight when its link is cut is lost.
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

#include "sim/sim_random.h"

namespace bulwark::sim {

struct NetworkProfile {
  int delay_max_ms = 2;      // usual one-way delay: 0..this
  int spike_per_mille = 10;  // how often a datagram is much later
  int spike_max_ms = 60;
  int drop_per_mille = 5;
};

struct Packet {
  int64_t deliver_ms = 0;
  uint64_t seq = 0;  // ties at the same millisecond keep sending order
  int from = 0;
  int to = 0;
  std::vector<uint8_t> bytes;
};

class SimNetwork {
 public:
  SimNetwork(int nodes, NetworkProfile profile) : nodes_(nodes), profile_(profile) {
    links_.resize(static_cast<std::size_t>(nodes * nodes));
  }

  void send(int64_t now_ms, int from, int to, std::vector<uint8_t> bytes, Rng& rng);
  // Removes and returns the packets due by `now_ms`, in arrival order;
  // those whose link was cut meanwhile are dropped.
  std::vector<Packet> take_due(int64_t now_ms);

  void cut(int from, int to) { ++link(from, to).cuts; }
  void restore(int from, int to) {
    if (link(from, to).cuts > 0) --link(from, to).cuts;
  }
  void set_loss(int from, int to, int per_mille) { link(from, to).loss_per_mille = per_mille; }
  // Every cut and every lossy link gone.
  void heal();
  bool up(int from, int to) const { return from == to || links_[index(from, to)].cuts == 0; }
  bool both_ways(int a, int b) const { return up(a, b) && up(b, a); }

 private:
  static constexpr std::size_t kInFlightMax = 8192;  // beyond: dropped, like a full queue
  struct Link {
    int cuts = 0;
    int loss_per_mille = 0;  // on top of the profile's
  };
  struct Later {
    bool operator()(const Packet& a, const Packet& b) const {
      return a.deliver_ms != b.deliver_ms ? a.deliver_ms > b.deliver_ms : a.seq > b.seq;
    }
  };
  std::size_t index(int from, int to) const { return static_cast<std::size_t>(from * nodes_ + to); }
  Link& link(int from, int to) { return links_[index(from, to)]; }

  int nodes_;
  NetworkProfile profile_;
  std::vector<Link> links_;
  std::priority_queue<Packet, std::vector<Packet>, Later> in_flight_;
  uint64_t next_seq_ = 1;
};

}  // namespace bulwark::sim
