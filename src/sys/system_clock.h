// The real Clock: CLOCK_MONOTONIC and CLOCK_REALTIME.
#pragma once

#include "core/env.h"

namespace bulwark {

class SystemClock final : public Clock {
 public:
  int64_t mono_ms() const override;
  int64_t wall_ms() const override;
  void sleep_ms(int64_t ms) const override;
};

// Monotonic time for code that cannot take an injected Clock per call (the
// proxy's data plane reads it once per loop turn), in microseconds and
// milliseconds. SystemClock::mono_ms() reads the same clock. Outside
// src/sys and src/bin, only the callers scripts/check_clock_rule.py allows
// (each with its reason) may use these directly.
int64_t mono_us();
inline int64_t mono_ms_now() { return mono_us() / 1000; }

// Sleeps the calling thread (SystemClock::sleep_ms).
void sleep_ms(int64_t ms);

}  // namespace bulwark
