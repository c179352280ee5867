// An agent class that runs its operations itself, on the agent thread's
// EventLoop, rather than as processes of ProcessRunner: `vip` (netlink
// calls, src/vip). ProcessRunner hands such a runner every operation of its
// class. bulwarkd registers the classes it has (ProcessRunnerOptions::
// classes), so the agent knows this interface and none of the classes:
// src/vip depends on src/agent, never the other way round.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/operation.h"
#include "core/env.h"
#include "sys/event_loop.h"

namespace bulwark {

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
};

// Makes the runner of one class for a ProcessRunner: its loop, its runtime
// directory (emptied after a reboot) and the tag base of its loop events.
using ClassRunnerFactory = std::function<std::unique_ptr<ClassRunner>(
    const Clock& clock, EventLoop& loop, const std::string& runtime_dir, uint64_t tag_base)>;

}  // namespace bulwark
