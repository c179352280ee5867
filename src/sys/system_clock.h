// The real Clock: CLOCK_MONOTONIC and CLOCK_REALTIME.
#pragma once

#include "core/env.h"

namespace bulwark {

class SystemClock final : public Clock {
 public:
  int64_t mono_ms() const override;
  int64_t wall_ms() const override;
};

// Sleeps the calling thread; only code in src/sys and src/bin may call it.
void sleep_ms(int64_t ms);

}  // namespace bulwark
