// The environment the protocol logic runs in. Code outside src/sys and
// src/bin reads time and sleeps through a Clock it is given, never through
// the system directly, so that the deterministic simulation (tests/sim) can
// drive the same code with one seed; scripts/check_clock_rule.py enforces
// it in `make test`. The real implementation is SystemClock (src/sys).
// Randomness comes from src/security (OpenSSL's generator).
#pragma once

#include <cstdint>

namespace bulwark {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds; never goes backwards, unrelated to wall time.
  virtual int64_t mono_ms() const = 0;
  // Wall-clock milliseconds since the Unix epoch, for humans and reports only.
  virtual int64_t wall_ms() const = 0;
  // Blocks the calling thread for `ms` of this clock (none if ms <= 0).
  virtual void sleep_ms(int64_t ms) const = 0;
};

}  // namespace bulwark
