// An agent class as a plug-in: the runner of every operation of one class
// (exec, ocf, systemd, vip, proxy), on the agent thread's EventLoop, never
// blocking it. The agent knows this interface and none of the classes:
// bulwarkd registers the classes it has (ClassDispatcherOptions::classes),
// each from its own folder under src/classes, which depends on src/agent,
// never the other way round. Classes whose operations are commands share
// CommandClass (command_class.h).
//
// Thread-safety: the loop's thread only.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/operation.h"
#include "core/env.h"
#include "store/schema.h"
#include "sys/event_loop.h"

namespace bulwark {

// An announced stop of a server's instance that a class (proxy) has
// drained: for NodeAgent::acknowledge.
struct ServerDrain {
  std::string resource;
  std::string node;
  int64_t seq = 0;
  auto operator<=>(const ServerDrain&) const = default;
};

class ClassRunner {
 public:
  virtual ~ClassRunner() = default;
  virtual void begin(const OpRequest& request) = 0;
  // Ends the operation at once, if it is this runner's; its answer is dropped.
  virtual void cancel(uint64_t id) = 0;
  // A loop event with one of this runner's tags (tag_base | a counter).
  virtual void on_event(uint64_t tag, uint32_t events) = 0;
  // Deadlines and schedules: called on every loop turn.
  virtual void tick() = 0;
  virtual int64_t next_deadline_ms() const = 0;
  // Appends the completions since the last call.
  virtual void take_completions(std::vector<OpCompletion>& out) = 0;

  // A class that keeps what an instance was started with itself (exec: in
  // its pid file) says so, and answers for it; for the others the
  // dispatcher keeps a definition file.
  virtual bool records_definitions() const { return false; }
  virtual std::optional<RunningDefinition> recorded(const std::string& resource) const {
    (void)resource;
    return std::nullopt;
  }

  // On every turn of the agent's loop, after its step: a class whose
  // instances follow the cluster (a proxy's servers) acts on the state and
  // this node's own record.
  virtual void follow(const ClusterState& state, const std::string& self,
                      const NodeStatusRecord& local) {
    (void)state;
    (void)self;
    (void)local;
  }
  virtual std::vector<ServerDrain> take_drained() { return {}; }
};

// What a class runner gets from its dispatcher.
struct ClassContext {
  const Clock& clock;
  EventLoop& loop;
  std::string runtime_dir;  // pid and state files; emptied after a reboot
  std::string log_dir;      // one log per resource (its output, its agent's)
  // KEY=VALUE entries every command gets besides its own (a dev node's
  // process-tree marker).
  std::vector<std::string> inherited_env;
  uint64_t tag_base = 0;  // of its loop events: tag_base | a counter below 2^52
};

using ClassRunnerFactory = std::function<std::unique_ptr<ClassRunner>(const ClassContext& context)>;

}  // namespace bulwark
