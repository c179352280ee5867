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

#include "agent/agent_loop.h"
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
  // Runs the thread until it blocks again, if what it waits for is there;
  // at most twice per call (per simulated millisecond), so that a loop
  // whose wait is over at once still lets time pass.
  void run_if_ready();
  // Inside a thread: blocks it until `ready()` holds (at the earliest when
  // the machine next runs its threads). SimClock::sleep_ms blocks on it.
  static void block_until(std::function<bool()> ready);

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

// What the agent's loop touches (AgentLoopIo) in a simulated daemon: its
// writer thread (one status write at a time, through the real StoreWrites
// over SimKv, its result posted back to the loop), the membership view, the
// watchdog device.
class SimAgentIo final : public AgentLoopIo {
 public:
  SimAgentIo(const Clock& clock, SimWorld& world, int node, const Membership& membership)
      : clock_(clock), world_(world), node_(node), membership_(membership) {}

  MembershipView membership() const override { return membership_.view(); }
  void submit(StatusJob job) override;
  void wake() override { woken_ = true; }
  bool watchdog_configured() const override { return world_.config().watchdog_ms > 0; }
  bool watchdog_armed() const override { return watchdog_armed_; }
  Status arm_watchdog() override;
  Status feed_watchdog() override;

  // AgentService::start armed the watchdog (none was left armed).
  void armed_at_start() { watchdog_armed_ = true; }
  // The writer thread's body: StoreWrites::put_status for each job.
  void run_writer(StoreWrites& writes, const std::string& node);
  // The agent thread's body: AgentService::run's loop around `loop`.
  void run_agent(AgentLoop& loop, const std::shared_ptr<const ClusterState>& cache,
                 const std::function<bool()>& has_completions);
  // Local ms the write in flight has waited (its result not yet run by the
  // loop); -1: none.
  int64_t write_in_flight_ms(const AgentLoop& loop) const {
    return loop.write_in_flight() ? clock_.mono_ms() - submitted_ms_ : -1;
  }

 private:
  struct Posted {
    StatusJob job;
    Result<StoreWrites::StatusWrite> result;
  };
  const Clock& clock_;
  SimWorld& world_;
  int node_;
  const Membership& membership_;
  bool watchdog_armed_ = false;
  bool woken_ = false;
  std::optional<StatusJob> job_;  // for the writer
  std::optional<Posted> posted_;  // for the loop (EventLoop::post)
  int64_t submitted_ms_ = 0;      // local
};

}  // namespace bulwark::sim
