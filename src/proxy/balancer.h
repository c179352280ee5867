// Choosing a server: a pure function of the candidates' state, the balance
// mode and (for roundrobin) the balancer's own rotation state. Backend calls
// it under its lock; the unit tests call it directly.
#pragma once

#include <cstdint>
#include <vector>

#include "proxy/proxy_config.h"

namespace bulwark::proxy {

struct Candidate {
  int weight = 1;
  int active = 0;   // requests or connections in flight
  int maxconn = 0;  // 0: no limit
  bool backup = false;
  bool usable = true;     // up, not draining, not removed
  bool excluded = false;  // already tried for this request
  uint64_t key = 0;       // stable per server (hash of its name), for source hashing

  bool full() const { return maxconn > 0 && active >= maxconn; }
};

enum class PickOutcome {
  kPicked,  // `index` is the server to use
  kFull,    // servers are up but all at maxconn: wait in the queue
  kNone,    // no server can take traffic: 503
};

struct Pick {
  PickOutcome outcome = PickOutcome::kNone;
  int index = -1;
};

class Balancer {
 public:
  // Backup servers are considered only when no primary is usable. A server
  // already tried is taken again only when every other usable one was.
  Pick pick(const std::vector<Candidate>& candidates, Balance balance, uint64_t client_hash);

 private:
  int pick_roundrobin(const std::vector<Candidate>& c, const std::vector<int>& eligible);
  int pick_leastconn(const std::vector<Candidate>& c, const std::vector<int>& eligible);

  // Smooth weighted round robin: every pick adds each eligible server's
  // weight to its credit and takes the server with the most credit, which
  // then pays the total. Over any window servers get their weight's share,
  // interleaved rather than in bursts.
  std::vector<int64_t> credit_;
  uint64_t rotation_ = 0;  // breaks leastconn ties fairly
  std::vector<int> eligible_;
};

// 64-bit mixing (splitmix64 finaliser), for client and server keys.
uint64_t mix64(uint64_t x);
uint64_t hash_bytes(const void* data, std::size_t n);

}  // namespace bulwark::proxy
