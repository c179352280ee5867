// A Clock that a unit test sets by hand; sleeping advances it.
#pragma once

#include <optional>

#include "core/env.h"

namespace bulwark::test_support {

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t mono_ms = 0) : mono_ms_(mono_ms) {}
  int64_t mono_ms() const override { return mono_ms_; }
  // Set by hand, or as far from the epoch as the monotonic clock has run.
  int64_t wall_ms() const override { return wall_ms_ ? *wall_ms_ : mono_ms_ + 1700000000000; }
  void sleep_ms(int64_t ms) const override { mono_ms_ += ms > 0 ? ms : 0; }
  void set_mono_ms(int64_t t) { mono_ms_ = t; }
  void set_wall_ms(int64_t t) { wall_ms_ = t; }

 private:
  mutable int64_t mono_ms_;
  std::optional<int64_t> wall_ms_;
};

}  // namespace bulwark::test_support
