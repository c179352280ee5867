// Ground truth: which resource instances run (and which are promoted) on
// which node, as each node's kernel would tell. Node agents learn of it only
// through operations (sim_runner.h); the checkers read it directly.
//
// Processes act on their own: a process told to stop exits some time later
// whatever its daemon does meanwhile (paused, crashed). Such delayed changes
// are effects scheduled here, aimed at one life of the instance, so that an
// effect meant for an earlier life never touches a later one.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/operation.h"
#include "sim/trace.h"

namespace bulwark::sim {

struct Instance {
  bool running = false;
  bool promoted = false;
  uint64_t life = 0;      // changes with every spawn
  int64_t since_ms = -1;  // when this life began (global ms)
  // What this life was started with: what the node's runtime directory
  // records for a restarted daemon (ClassDispatcher::recorded), and what
  // invariant 4 compares with the applied file.
  std::optional<RunningDefinition> definition;
  std::string fingerprint;  // run_fingerprint of definition->spec
};

enum class EffectKind { kExit, kDemote };

class Processes {
 public:
  Processes(std::vector<std::string> node_names, Trace& trace)
      : names_(std::move(node_names)), trace_(trace), nodes_(names_.size()) {}

  const Instance& get(int node, const std::string& resource) const;
  const std::map<std::string, Instance>& on(int node) const { return nodes_[node]; }

  // Starts the instance unless it runs (with `definition`); returns its
  // life either way.
  uint64_t spawn(int node, const std::string& resource, int64_t now_ms,
                 const RunningDefinition& definition);
  // These act only on the given life (0: whatever life runs now).
  void promote(int node, const std::string& resource, uint64_t life);
  void demote(int node, const std::string& resource, uint64_t life, const std::string& why);
  void kill(int node, const std::string& resource, uint64_t life, const std::string& why);
  // Power loss or fencing: everything on the node is gone at once.
  void power_off(int node);

  uint64_t schedule(int64_t at_ms, int node, const std::string& resource, uint64_t life,
                    EffectKind kind, const std::string& why);
  void cancel(uint64_t effect_id) { effects_.erase(effect_id); }
  void advance(int64_t now_ms);

  // Called on every exit but power loss: how an exec resource's daemon
  // learns through its pidfd that the process is gone.
  std::function<void(int node, const std::string& resource)> on_exit;

  // Starts, stops, promotions and demotions so far: the checkers compare it
  // over quiet periods.
  uint64_t changes() const { return changes_; }
  uint64_t starts() const { return starts_; }

 private:
  struct Effect {
    int64_t at_ms;
    int node;
    std::string resource;
    uint64_t life;
    EffectKind kind;
    std::string why;
  };
  Instance* find(int node, const std::string& resource, uint64_t life);

  std::vector<std::string> names_;
  Trace& trace_;
  std::vector<std::map<std::string, Instance>> nodes_;
  std::map<uint64_t, Effect> effects_;  // by id, which is also the order they were made in
  uint64_t next_effect_ = 1;
  uint64_t next_life_ = 1;
  uint64_t changes_ = 0;
  uint64_t starts_ = 0;
};

}  // namespace bulwark::sim
