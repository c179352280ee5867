// The environment the protocol logic runs in. Membership, coordinator and
// (later) agent code receive these interfaces by reference instead of reading
// the system clock or sleeping, so that a deterministic simulation can drive
// them with one seed. The real implementations live in src/sys.
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

class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t next_u64() = 0;
};

}  // namespace bulwark
