#include "sys/system_clock.h"

#include <time.h>

namespace bulwark {

namespace {
int64_t read_ms(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
}  // namespace

int64_t mono_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int64_t SystemClock::mono_ms() const { return mono_us() / 1000; }
int64_t SystemClock::wall_ms() const { return read_ms(CLOCK_REALTIME); }
void SystemClock::sleep_ms(int64_t ms) const { bulwark::sleep_ms(ms); }

void sleep_ms(int64_t ms) {
  if (ms <= 0) return;
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

}  // namespace bulwark
