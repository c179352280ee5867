// The built-in `vip` agent class: a virtual IP address that the node agent
// starts, monitors and stops like any resource, on the agent thread's
// EventLoop, never blocking it (ClassDispatcher hands it every operation of
// a `vip` resource).
//   start    refused if another host answers for the address within
//            conflict_probe_ms (an ARP probe, RFC 5227, or a DAD-style
//            neighbour solicitation); then the address is added through
//            rtnetlink and announced (gratuitous ARP, or an unsolicited
//            neighbour advertisement), at once and again on a schedule, so
//            that neighbours that missed one still move to this node.
//   stop     the address removed (one netlink call: it cannot hang, which
//            is why a VIP, like an exec resource, is always gone by the end
//            of a lost lease); announcements still due are dropped.
//   monitor  the address is still on the interface.
// A loopback VIP (127.0.0.0/8, for `bulwark dev` clusters) changes nothing
// in the kernel: every such address is local already. Holding it is a
// marker file in the runtime directory, which bulwark-proxy's frontends on
// the address follow, so only the holder serves it.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/class_runner.h"
#include "core/env.h"
#include "sys/event_loop.h"
#include "sys/neighbour.h"
#include "sys/netlink.h"

namespace bulwark {

// When a taken address is announced, counted from the moment it was added.
inline constexpr std::array<int64_t, 5> kVipAnnounceAtMs = {0, 100, 300, 1000, 3000};

// The `vip` class, for ClassDispatcherOptions::classes.
ClassRunnerFactory vip_class();

// The marker of a loopback VIP held by this node.
std::string loopback_vip_marker(const std::string& runtime_dir, const std::string& resource);

class VipRunner final : public ClassRunner {
 public:
  // Loop events of the runner carry `tag_base` | a small counter.
  VipRunner(const Clock& clock, EventLoop& loop, std::string runtime_dir, uint64_t tag_base);
  ~VipRunner() override;
  VipRunner(const VipRunner&) = delete;
  VipRunner& operator=(const VipRunner&) = delete;

  void begin(const OpRequest& request) override;
  void cancel(uint64_t id) override;
  void on_event(uint64_t tag, uint32_t events) override;
  // Probe windows, announcements, deadlines: call on every loop turn.
  void tick() override;
  int64_t next_deadline_ms() const override;
  void take_completions(std::vector<OpCompletion>& out) override;

 private:
  // A start waiting for its conflict probe's window to pass.
  struct Start {
    OpRequest request;
    InterfaceInfo iface;
    IpAddress address;
    std::unique_ptr<AddressConflictProbe> probe;
    uint64_t tag = 0;
    int64_t probe_until_ms = 0;
    int64_t deadline_ms = 0;
  };
  // A held address with announcements still due.
  struct Announcing {
    InterfaceInfo iface;
    IpAddress address;
    int64_t taken_ms = 0;
    std::size_t sent = 0;
  };

  void begin_start(const OpRequest& r);
  void begin_stop(const OpRequest& r);
  void check(const OpRequest& r);  // probe and monitor
  void take(Start& start);
  void announce_due(const std::string& resource, Announcing& a, int64_t now);
  void finish_start(uint64_t id, OpOutcome outcome, std::string detail);
  void complete(const OpRequest& r, OpOutcome outcome, std::string detail);
  // The netlink socket, opened on first use (a cluster without VIPs never
  // opens one).
  Result<Rtnetlink*> rtnl();

  const Clock& clock_;
  EventLoop& loop_;
  std::string runtime_dir_;
  uint64_t tag_base_;
  uint64_t next_tag_ = 1;
  std::unique_ptr<Rtnetlink> rtnl_;
  std::map<uint64_t, Start> starts_;              // by operation id
  std::map<std::string, Announcing> announcing_;  // by resource
  std::vector<OpCompletion> completions_;
};

}  // namespace bulwark
