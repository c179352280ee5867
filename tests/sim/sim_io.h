// What bulwarkd's code touches, simulated: the interfaces that src/ defines
// for etcd (Kv), the node's cache (CacheWait) and fence agents
// (FenceLauncher), implemented over the simulated world for one daemon
// life. A call blocks its simulated thread (SimThread) for simulated time,
// as the real synchronous calls block a real thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/fencer.h"
#include "sim/fiber.h"
#include "sim/sim_world.h"
#include "store/etcd_client.h"
#include "store/store.h"

namespace bulwark::sim {

// One thread of a simulated daemon: its code runs on a fiber, which the
// simulated machine resumes once what it blocks on is ready. Destroying it
// (the daemon died) unwinds what the thread was in the middle of.
class SimThread {
 public:
  explicit SimThread(std::function<void()> body);
  // Runs the thread until it blocks again, if what it waits for is there.
  void run_if_ready();
  // Inside a thread: blocks it until `ready()` holds.
  static void block_until(std::function<bool()> ready);
  // Inside a thread: blocks it for `ms` of its node's clock.
  static void sleep_ms(const Clock& clock, int64_t ms);

 private:
  std::function<bool()> ready_;
  Fiber fiber_;
};

class SimKv final : public Kv {
 public:
  SimKv(SimWorld& world, int node, uint64_t incarnation)
      : world_(world), node_(node), incarnation_(incarnation) {}

  Result<RangeResult> get(const std::string& key, bool prefix = false, int timeout_ms = 0) override;
  Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure = {}, int timeout_ms = 0) override;

 private:
  StoreReply call(StoreRequest request);

  SimWorld& world_;
  int node_;
  uint64_t incarnation_;
};

// The daemon's watch-fed cache, as the coordinator waits on it.
class SimCacheWait final : public CacheWait {
 public:
  SimCacheWait(const Clock& clock, std::function<int64_t()> cache_revision)
      : clock_(clock), cache_revision_(std::move(cache_revision)) {}
  bool wait_for_revision(int64_t revision, int timeout_ms) override;

 private:
  const Clock& clock_;
  std::function<int64_t()> cache_revision_;
};

// Fence agents: the world powers the target off (and boots it again) when
// the call succeeds. The target is the `plug` option the agent reads from
// its stdin, as fence-agents do.
class SimFenceLauncher final : public FenceLauncher {
 public:
  SimFenceLauncher(SimWorld& world, int node, uint64_t incarnation)
      : world_(world), node_(node), incarnation_(incarnation) {}
  Result<int64_t> launch(const std::vector<std::string>& argv, const std::string& options) override;
  std::optional<int> reap(int64_t call) override;
  void kill(int64_t call) override;

 private:
  SimWorld& world_;
  int node_;
  uint64_t incarnation_;
};

}  // namespace bulwark::sim
