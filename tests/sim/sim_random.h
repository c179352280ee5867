// The simulation's only source of randomness. splitmix64 and our own
// range arithmetic, because the standard distributions may differ between
// library versions, and a seed must replay the same run everywhere.
#pragma once

#include <cstdint>

#include "core/check.h"

namespace bulwark::sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next_u64() {
    // splitmix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number
    // generators", OOPSLA 2014).
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  // Uniform in [lo, hi], both included.
  int64_t range(int64_t lo, int64_t hi) {
    BW_ASSERT(lo <= hi, "empty range");
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(span == 0 ? next_u64() : next_u64() % span);
  }

  // True with probability per_mille / 1000.
  bool chance(int per_mille) { return range(0, 999) < per_mille; }

 private:
  uint64_t state_;
};

}  // namespace bulwark::sim
