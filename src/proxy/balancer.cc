#include "proxy/balancer.h"

#include <cmath>

namespace bulwark::proxy {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_bytes(const void* data, std::size_t n) {
  // FNV-1a, then mixed: stable across runs and machines, which source
  // hashing needs so that a restart does not move every client.
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return mix64(h);
}

Pick Balancer::pick(const std::vector<Candidate>& c, Balance balance, uint64_t client_hash) {
  if (credit_.size() != c.size()) credit_.assign(c.size(), 0);
  bool any_primary = false;
  for (const auto& x : c) any_primary |= x.usable && x.weight > 0 && !x.backup;
  const bool want_backup = !any_primary;
  // Eligible: usable servers of the chosen tier that are not full; prefer
  // ones not yet tried.
  bool tier_has_servers = false;
  for (bool allow_excluded : {false, true}) {
    eligible_.clear();
    for (int i = 0; i < static_cast<int>(c.size()); ++i) {
      const Candidate& x = c[i];
      if (!x.usable || x.weight <= 0 || x.backup != want_backup) continue;
      tier_has_servers = true;
      if (x.full() || (x.excluded && !allow_excluded)) continue;
      eligible_.push_back(i);
    }
    if (!eligible_.empty()) break;
  }
  if (eligible_.empty())
    return Pick{tier_has_servers ? PickOutcome::kFull : PickOutcome::kNone, -1};
  int index = -1;
  switch (balance) {
    case Balance::kRoundRobin:
      index = pick_roundrobin(c, eligible_);
      break;
    case Balance::kLeastConn:
      index = pick_leastconn(c, eligible_);
      break;
    case Balance::kFirst:
      index = eligible_.front();
      break;
    case Balance::kSource: {
      // Weighted rendezvous hashing: each server scores the client; the
      // best score wins. Removing a server moves only its own clients.
      double best = -1;
      for (int i : eligible_) {
        const uint64_t h = mix64(client_hash ^ c[i].key);
        const double u = (static_cast<double>(h >> 11) + 0.5) / 9007199254740992.0;
        const double score = c[i].weight / -std::log(u);
        if (score > best) {
          best = score;
          index = i;
        }
      }
      break;
    }
  }
  return Pick{PickOutcome::kPicked, index};
}

int Balancer::pick_roundrobin(const std::vector<Candidate>& c, const std::vector<int>& eligible) {
  int64_t total = 0;
  int best = -1;
  for (int i : eligible) {
    credit_[i] += c[i].weight;
    total += c[i].weight;
    if (best < 0 || credit_[i] > credit_[best]) best = i;
  }
  credit_[best] -= total;
  return best;
}

int Balancer::pick_leastconn(const std::vector<Candidate>& c, const std::vector<int>& eligible) {
  // Least (active + 1) / weight, compared without division; ties go round
  // robin so that idle servers share a light load.
  const std::size_t n = eligible.size();
  const std::size_t start = rotation_++ % n;
  int best = -1;
  for (std::size_t k = 0; k < n; ++k) {
    const int i = eligible[(start + k) % n];
    if (best < 0 || static_cast<int64_t>(c[i].active + 1) * c[best].weight <
                        static_cast<int64_t>(c[best].active + 1) * c[i].weight)
      best = i;
  }
  return best;
}

}  // namespace bulwark::proxy
