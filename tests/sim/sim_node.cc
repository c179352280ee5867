#include "sim/sim_node.h"

#include <limits>

#include "agent/agent_loop.h"
#include "agent/node_agent.h"
#include "coordinator/coordinator.h"
#include "membership/membership.h"
#include "sim/sim_io.h"
#include "sim/sim_runner.h"
#include "store/store_writes.h"

namespace bulwark::sim {
namespace {

// A socket buffer holds this many datagrams; more are dropped.
constexpr std::size_t kInboxMax = 256;

std::shared_ptr<const ClusterState> empty_state() {
  static const auto kEmpty = std::make_shared<const ClusterState>();
  return kEmpty;
}

CoordinatorOptions coordinator_options(const SimConfig& cfg, int64_t started_ms) {
  CoordinatorOptions o;
  // As bulwarkd derives them from its configuration (daemon.cc).
  o.lease_margin_ms = cfg.lease_margin_ms;
  o.lease_ms = cfg.lease_ms;
  if (cfg.fencing) o.fencing.command = {"fence_sim"};
  o.watchdog_ms = cfg.watchdog_ms;
  o.started_mono_ms = started_ms;
  o.settle_ms = cfg.lease_ms + cfg.heartbeat_ms;
  return o;
}

std::vector<NodeRecord> node_records(const SimConfig& cfg) {
  std::vector<NodeRecord> out;
  for (const auto& n : cfg.nodes) {
    NodeRecord r;
    r.name = n;
    out.push_back(r);
  }
  return out;
}

}  // namespace

// One life of bulwarkd. Members are built in dependency order, and what a
// thread uses outlives the thread.
struct SimNode::Daemon {
  Daemon(SimWorld& world, int index, const Clock& clock, const Schema& schema,
         uint64_t incarnation_in, bool watchdog_recovering)
      : incarnation(incarnation_in),
        started_ms(clock.mono_ms()),
        membership(clock, world.config().cluster, world.config().nodes[index],
                   world.config().secret, world.config().heartbeat_ms, world.config().lease_ms,
                   incarnation_in),
        runner(clock, world, index),
        agent(clock, runner,
              AgentOptions{world.config().nodes[index], world.config().nodes[index],
                           world.config().lease_guard_ms}),
        kv(world, index, incarnation_in),
        writes(clock, kv, schema, world.config().cluster, world.config().store_timeout_ms),
        cache_wait(clock, [this] { return cache ? cache->revision : -1; }),
        fence(world, index, incarnation_in),
        coordinator(clock, writes, cache_wait, fence, world.config().nodes[index],
                    node_records(world.config()), coordinator_options(world.config(), started_ms)),
        agent_io(clock, world, index, membership),
        agent_loop(clock, agent, runner, agent_io, world.config().nodes[index]),
        control([this, &clock] { control_loop(clock); }),
        writer([this, &world, index] { agent_io.run_writer(writes, world.config().nodes[index]); }),
        agent_thread([this] {
          agent_io.run_agent(agent_loop, cache, [this] { return runner.has_completions(); });
        }) {
    agent_loop.set_watchdog_recovering(watchdog_recovering);
    // AgentService::start arms the watchdog unless one was left armed.
    if (world.config().watchdog_ms > 0 && !watchdog_recovering) agent_io.armed_at_start();
  }

  // daemon.cc's control loop, the coordinator's part: a tick, then a pause.
  void control_loop(const Clock& clock) {
    while (true) {
      const std::shared_ptr<const ClusterState> state = cache ? cache : empty_state();
      membership.set_watched(Coordinator::watched(*state));
      coordinator.tick(*state, membership.view());
      clock.sleep_ms(Coordinator::kTickMs);
    }
  }

  uint64_t incarnation;
  int64_t started_ms;  // local
  Membership membership;
  SimRunner runner;
  NodeAgent agent;
  std::shared_ptr<const ClusterState> cache;  // null until the first load
  SimKv kv;
  StoreWrites writes;
  SimCacheWait cache_wait;
  SimFenceLauncher fence;
  Coordinator coordinator;
  // The own lease end (local ms), as Membership::view() says it; it moves
  // only when a round trip completes, and is read after each pong.
  int64_t lease_expires_ms = std::numeric_limits<int64_t>::min();
  SimAgentIo agent_io;
  AgentLoop agent_loop;
  std::deque<std::vector<uint8_t>> inbox;
  // The daemon's threads (besides membership, run directly).
  SimThread control;
  SimThread writer;  // the agent's status writer
  SimThread agent_thread;
};

SimNode::SimNode(SimWorld& world, int index, const int64_t& global_ms, int64_t clock_offset_ms,
                 const Schema& schema)
    : world_(world),
      index_(index),
      name_(world.config().nodes[index]),
      global_ms_(global_ms),
      clock_(global_ms, clock_offset_ms),
      schema_(schema) {}

SimNode::~SimNode() = default;

uint64_t SimNode::incarnation() const { return daemon_ ? daemon_->incarnation : 0; }
SimRunner* SimNode::runner() { return daemon_ ? &daemon_->runner : nullptr; }
int64_t SimNode::cache_revision() const {
  return daemon_ && daemon_->cache ? daemon_->cache->revision : -1;
}
int64_t SimNode::status_write_ms() const {
  return daemon_ ? daemon_->agent_io.write_in_flight_ms(daemon_->agent_loop) : -1;
}

bool SimNode::holds_lease() const {
  return daemon_ && daemon_->lease_expires_ms > clock_.mono_ms();
}

int64_t SimNode::lease_end_ms() const {
  if (!daemon_ || daemon_->lease_expires_ms == std::numeric_limits<int64_t>::min())
    return std::numeric_limits<int64_t>::min();
  return daemon_->lease_expires_ms - clock_.offset_ms();
}

void SimNode::power_on(int64_t boot_ms) {
  if (powered_) return;
  powered_ = true;
  boot_ms_ = boot_ms;
}

void SimNode::power_off() {
  powered_ = false;
  machine_up_ = false;
  watchdog_marker_ = false;  // the runtime directory is emptied at boot
  boot_ms_ = -1;
  paused_until_ms_ = -1;
  daemon_.reset();
  held_lease_ = false;
}

void SimNode::crash_daemon(int64_t restart_ms) {
  if (!powered_) return;
  daemon_.reset();
  held_lease_ = false;
  paused_until_ms_ = -1;
  boot_ms_ = restart_ms;
}

void SimNode::pause_until(int64_t until_ms) {
  if (daemon_) paused_until_ms_ = std::max(paused_until_ms_, until_ms);
}

void SimNode::boot() {
  boot_ms_ = -1;
  machine_up_ = true;
  uint64_t incarnation = 0;
  while (incarnation == 0) incarnation = world_.rng().next_u64();
  // AgentService::start: the marker an earlier daemon of this boot left in
  // the runtime directory when it armed the watchdog (no simulated daemon
  // ends cleanly, so none removed it).
  const bool watchdog = world_.config().watchdog_ms > 0;
  const bool recovering = watchdog && watchdog_marker_;
  if (watchdog && !recovering) watchdog_marker_ = true;
  daemon_ = std::make_unique<Daemon>(world_, index_, clock_, schema_, incarnation, recovering);
  daemon_started_ms_ = global_ms_;
  std::vector<PeerEndpoint> members;
  for (const auto& n : world_.config().nodes)
    members.push_back(PeerEndpoint{.name = n, .address = n, .port = 0});
  daemon_->membership.set_members(members);
  note_lease();
  // AgentService::start opens the watchdog, which counts as a keepalive,
  // unless it is recovering: then it is opened later (feed_watchdog).
  if (watchdog && !recovering) world_.feed_watchdog(index_);
  world_.trace().add(name_,
                     "bulwarkd starts (incarnation " + std::to_string(incarnation % 100000) + ")");
}

void SimNode::receive(std::vector<uint8_t> bytes) {
  if (!daemon_ || daemon_->inbox.size() >= kInboxMax) return;
  daemon_->inbox.push_back(std::move(bytes));
}

void SimNode::set_cache(std::shared_ptr<const ClusterState> state) {
  if (daemon_) daemon_->cache = std::move(state);
}

void SimNode::run() {
  world_.trace().set_actor(name_);
  if (!daemon_ && powered_ && boot_ms_ >= 0 && global_ms_ >= boot_ms_) boot();
  if (!daemon_ || paused()) return;
  run_membership();
  daemon_->control.run_if_ready();
  // The writer runs before and after the agent's loop: a result that came
  // in is posted before the loop turns, and a job the loop submitted goes
  // out the same millisecond.
  daemon_->writer.run_if_ready();
  daemon_->agent_thread.run_if_ready();
  daemon_->writer.run_if_ready();
  // What the agent leaves alone, from the state it acts on (its cache).
  if (const ClusterState* c = daemon_->cache.get(); c && c->resource_config) {
    const auto self = c->nodes.find(name_);
    const bool all = c->directives.maintenance ||
                     (self != c->nodes.end() && self->second.mode == NodeMode::kMaintenance);
    for (const auto& spec : c->resource_config->resources) {
      if (all || c->directives.unmanaged.count(spec.name)) left_alone_ms_[spec.name] = global_ms_;
    }
  }
}

int64_t SimNode::left_alone_ms(const std::string& resource) const {
  auto it = left_alone_ms_.find(resource);
  return it == left_alone_ms_.end() ? std::numeric_limits<int64_t>::min() : it->second;
}

void SimNode::run_membership() {
  Daemon& d = *daemon_;
  bool pong = false;
  // Bounded by the socket buffer.
  while (!d.inbox.empty()) {
    auto reply = d.membership.receive(d.inbox.front());
    d.inbox.pop_front();
    if (reply) {
      world_.send(index_, *reply);
    } else {
      pong = true;  // (or a rejected datagram): only a pong moves the lease
    }
  }
  if (clock_.mono_ms() >= d.membership.next_tick_ms()) {
    for (const auto& dg : d.membership.tick()) world_.send(index_, dg);
  }
  if (pong) note_lease();
  const bool holds = holds_lease();
  if (holds != held_lease_) {
    world_.trace().add(name_, holds ? "holds the quorum lease" : "lost the quorum lease");
    held_lease_ = holds;
  }
}

void SimNode::note_lease() {
  // The own lease end only moves when a round trip completes; the view
  // says it as the self member's lease bound.
  const MembershipView v = daemon_->membership.view();
  if (const MemberStatus* self = v.find(name_)) daemon_->lease_expires_ms = self->lease_bound_ms;
}

}  // namespace bulwark::sim
