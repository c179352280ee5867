// One simulated machine: its monotonic clock, its power, and the current
// life of bulwarkd on it, which runs the threads the real daemon does:
//   membership  the real Membership: answers the datagrams in its socket
//               buffer and sends pings when its tick is due;
//   control     daemon.cc's control loop: the real Coordinator::tick every
//               Coordinator::kTickMs;
//   agent       the real AgentLoop around the real NodeAgent, waiting as
//               AgentService's event loop does (SimAgentIo::run_agent);
//   writer      the agent's status writer: the real StoreWrites::put_status.
// All but membership run on SimThreads, whose store calls block them for
// simulated time. A pause stops them all (datagrams wait in the socket buffer, replies and
// watch events wait too) while the node's processes run on. A crash or a
// power loss ends the life; a boot starts a new one with a new incarnation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/env.h"
#include "sim/sim_world.h"
#include "store/schema.h"

namespace bulwark::sim {

class SimRunner;

// A node's monotonic clock: global simulated time plus a per-node offset.
// Sleeping blocks the calling SimThread for simulated time.
class SimClock final : public Clock {
 public:
  SimClock(const int64_t& global_ms, int64_t offset_ms) : now_(global_ms), offset_(offset_ms) {}
  int64_t mono_ms() const override { return now_ + offset_; }
  int64_t wall_ms() const override { return 1700000000000 + now_; }
  void sleep_ms(int64_t ms) const override;
  int64_t offset_ms() const { return offset_; }

 private:
  const int64_t& now_;
  int64_t offset_;
};

class SimNode {
 public:
  SimNode(SimWorld& world, int index, const int64_t& global_ms, int64_t clock_offset_ms,
          const Schema& schema);
  ~SimNode();

  const std::string& name() const { return name_; }
  const Clock& clock() const { return clock_; }
  bool powered() const { return powered_; }
  // Powered and booted since (its etcd member runs; bulwarkd may not).
  bool machine_up() const { return machine_up_; }
  bool running() const { return daemon_ != nullptr; }
  bool paused() const { return global_ms_ < paused_until_ms_; }
  uint64_t incarnation() const;

  // Power comes on; bulwarkd starts at `boot_ms` (global).
  void power_on(int64_t boot_ms);
  // Power is gone: so is the daemon (its processes are the world's).
  void power_off();
  // bulwarkd dies and is restarted at `restart_ms`; processes run on.
  void crash_daemon(int64_t restart_ms);
  void pause_until(int64_t until_ms);
  void resume() { paused_until_ms_ = std::min(paused_until_ms_, global_ms_); }

  // One simulated millisecond: boot if due, then the three threads unless
  // paused.
  void run();
  // A datagram arrives in the socket buffer.
  void receive(std::vector<uint8_t> bytes);
  // The watch delivered the store up to this state.
  void set_cache(std::shared_ptr<const ClusterState> state);
  int64_t cache_revision() const;
  SimRunner* runner();

  // For the checkers, in global ms.
  bool holds_lease() const;
  int64_t lease_end_ms() const;
  int64_t daemon_started_ms() const { return daemon_started_ms_; }
  int64_t paused_until_ms() const { return paused_until_ms_; }
  // How long the agent's status write in flight has waited for the store;
  // -1: none is in flight.
  int64_t status_write_ms() const;
  // When this node's agent last left `resource` alone (maintenance,
  // unmanaged), in global ms; INT64_MIN: never.
  int64_t left_alone_ms(const std::string& resource) const;

 private:
  struct Daemon;
  void boot();
  void run_membership();
  void note_lease();

  SimWorld& world_;
  int index_;
  std::string name_;
  const int64_t& global_ms_;
  SimClock clock_;
  const Schema& schema_;
  bool powered_ = false;
  bool machine_up_ = false;
  int64_t boot_ms_ = -1;  // global; -1: no boot pending
  int64_t paused_until_ms_ = -1;
  int64_t daemon_started_ms_ = -1;
  bool held_lease_ = false;  // for the trace: lease changes
  // The watchdog marker in the runtime directory (AgentService::start):
  // written by a daemon that armed the watchdog, gone at power off.
  bool watchdog_marker_ = false;
  std::map<std::string, int64_t> left_alone_ms_;
  std::unique_ptr<Daemon> daemon_;
};

}  // namespace bulwark::sim
