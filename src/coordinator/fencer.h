// Runs the fence agent for lost nodes (DESIGN.md layer 2: "or at once when a
// fence agent confirms the node is off"). A fence call is a child process
// of the fence-agents kind: options as key=value lines on stdin (action,
// plug/port, nodename, then the configured params), exit status 0 when the
// node is off. Calls never block the coordinator: poll() reaps them; a
// failed or timed-out call is retried with a growing pause, and the node's
// exclusive resources stay where they were until one succeeds (safety
// before availability).
//
// Thread-safety: the coordinator's thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/env.h"
#include "core/error.h"

namespace bulwark {

// Runs fence agent processes for the Fencer: an interface, so that the
// simulation (tests/sim) runs the Fencer's rules over simulated fence
// devices. Handles are positive.
class FenceLauncher {
 public:
  virtual ~FenceLauncher() = default;
  // Starts `argv` with `options` on its stdin.
  virtual Result<int64_t> launch(const std::vector<std::string>& argv,
                                 const std::string& options) = 0;
  // The call's wait status once it ended; nullopt while it runs.
  virtual std::optional<int> reap(int64_t call) = 0;
  // Ends a call that ran past its deadline, with whatever it started.
  virtual void kill(int64_t call) = 0;
};

// Fence agents as child processes, each in its own process group.
class ProcessFenceLauncher final : public FenceLauncher {
 public:
  Result<int64_t> launch(const std::vector<std::string>& argv, const std::string& options) override;
  std::optional<int> reap(int64_t call) override;
  void kill(int64_t call) override;
};

class Fencer {
 public:
  Fencer(const Clock& clock, FenceLauncher& launcher, FencingConfig config,
         std::map<std::string, std::map<std::string, std::string>> node_params);
  ~Fencer();

  bool configured() const { return !config_.command.empty(); }
  // Fences the life `incarnation` of `node` (the daemon incarnation that
  // wrote the status record whose resources must be stopped), unless a
  // call for it is under way or that life is confirmed off.
  // `reason` says why, for the log (empty: it is lost).
  void request(const std::string& node, uint64_t incarnation, const std::string& reason = "");
  void poll();
  // A fence call is running: its end is worth noticing at once (poll()).
  bool in_flight() const;
  // The nodes a fence call runs for now.
  std::set<std::string> in_flight_nodes() const;
  // The node answers again as `incarnation`: if that is a new life, the
  // confirmation about the old one is done with (should the node be lost
  // again, it must be fenced again). The same life answering means the
  // view is older than the fence: nothing is forgotten.
  void forget_if_new_life(const std::string& node, uint64_t incarnation);
  // Node -> the incarnation whose life a fence agent confirmed off.
  const std::map<std::string, uint64_t>& confirmed() const { return confirmed_; }
  // The stdin a call for `node` sends, for tests and `--help` examples.
  std::string options_for(const std::string& node) const;

 private:
  struct Call {
    int64_t call = 0;  // the launcher's handle while one runs; 0: none
    int64_t deadline_ms = 0;
    int64_t retry_at_ms = 0;  // after a failure; 0: none pending
    int failures = 0;
    uint64_t incarnation = 0;  // the life being fenced
    std::string reason;        // why, for the log; empty: it is lost
  };
  void start(const std::string& node, Call& call);

  const Clock& clock_;
  FenceLauncher& launcher_;
  FencingConfig config_;
  std::map<std::string, std::map<std::string, std::string>> node_params_;
  std::map<std::string, Call> calls_;
  std::map<std::string, uint64_t> confirmed_;
};

}  // namespace bulwark
