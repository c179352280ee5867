// The environment the protocol logic runs in. Membership, the coordinator
// and the node agent receive a Clock by reference instead of reading the
// system clock, so that the deterministic simulation (tests/sim) can drive
// them with one seed. The real implementation lives in src/sys. (Sleeps and
// randomness do not come from here yet: issue 14.)
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
};

}  // namespace bulwark
