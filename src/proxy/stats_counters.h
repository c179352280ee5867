// Traffic counters of frontends, backends and servers. Each worker thread
// writes only its own slice, so a count costs a plain store with no lock and
// no cache line shared between workers; readers (the stats endpoint) add the
// slices up. Values are monotonic except `cur`, which readers sum too.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

namespace bulwark::proxy {

enum Counter : int {
  kConnections,  // connections accepted (frontend) or opened (server)
  kRequests,     // HTTP requests (http mode) or sessions (tcp mode)
  kErrors,       // requests that ended with an error
  kRetries,      // attempts made again on another server
  kBytesIn,      // from clients (frontend) or from servers (backend, server)
  kBytesOut,     // to clients (frontend) or to servers (backend, server)
  kResponses2xx,
  kResponses3xx,
  kResponses4xx,
  kResponses5xx,
  kConnectErrors,   // server: failed or timed-out connects
  kResponseErrors,  // server: reset, timeout or bad response before the response ended
  kCounterCount,
};

// Response-time buckets, upper bounds in microseconds, for the histogram on
// /metrics. Loopback backends answer in tens of microseconds, so the lowest
// buckets are fine-grained.
inline constexpr std::array<uint64_t, 16> kLatencyBoundsUs = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

struct alignas(64) CounterSlice {
  std::array<std::atomic<uint64_t>, kCounterCount> values{};
  std::array<std::atomic<uint64_t>, kLatencyBoundsUs.size() + 1> latency_buckets{};
  std::atomic<uint64_t> latency_sum_us{0};

  // Only the owning worker calls add(), so load+store needs no atomic RMW.
  void add(Counter c, uint64_t n = 1) {
    values[c].store(values[c].load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void observe_latency_us(uint64_t us);
};

struct CounterTotals {
  std::array<uint64_t, kCounterCount> values{};
  std::array<uint64_t, kLatencyBoundsUs.size() + 1> latency_buckets{};
  uint64_t latency_sum_us = 0;
};

class Counters {
 public:
  explicit Counters(int workers)
      : workers_(workers), slices_(std::make_unique<CounterSlice[]>(workers)) {}
  CounterSlice& slice(int worker) { return slices_[worker]; }
  CounterTotals totals() const;

 private:
  int workers_;
  std::unique_ptr<CounterSlice[]> slices_;
};

inline void CounterSlice::observe_latency_us(uint64_t us) {
  std::size_t i = 0;
  while (i < kLatencyBoundsUs.size() && us > kLatencyBoundsUs[i]) ++i;
  latency_buckets[i].store(latency_buckets[i].load(std::memory_order_relaxed) + 1,
                           std::memory_order_relaxed);
  latency_sum_us.store(latency_sum_us.load(std::memory_order_relaxed) + us,
                       std::memory_order_relaxed);
}

inline CounterTotals Counters::totals() const {
  CounterTotals t;
  for (int w = 0; w < workers_; ++w) {
    const CounterSlice& s = slices_[w];
    for (int c = 0; c < kCounterCount; ++c)
      t.values[c] += s.values[c].load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < t.latency_buckets.size(); ++b)
      t.latency_buckets[b] += s.latency_buckets[b].load(std::memory_order_relaxed);
    t.latency_sum_us += s.latency_sum_us.load(std::memory_order_relaxed);
  }
  return t;
}

}  // namespace bulwark::proxy
