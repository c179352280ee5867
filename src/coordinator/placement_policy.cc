#include "coordinator/placement_policy.h"

#include <algorithm>
#include <climits>

namespace bulwark {
namespace {

constexpr int64_t kNever = INT64_MIN / 4;
constexpr int64_t kMoveScore = 1000000;

// What is placed as one: a group, or a resource outside any group.
struct Unit {
  std::string name;
  std::vector<const ResourceSpec*> members;
  bool exclusive = true;  // groups and singletons; clones and promotables decide per instance
};

class Planner {
 public:
  // With `explain_unit`, run() also records why that unit cannot run on
  // `explain_node` (see obstacle()).
  explicit Planner(const PolicyInput& in, std::string explain_unit = "",
                   std::string explain_node = "")
      : in_(in),
        config_(*in.config),
        explain_unit_(std::move(explain_unit)),
        explain_node_(std::move(explain_node)) {
    for (const auto& n : in.nodes) nodes_.push_back(&n);
    std::sort(nodes_.begin(), nodes_.end(),
              [](const PolicyNode* a, const PolicyNode* b) { return a->name < b->name; });
    build_units();
    // Constraints indexed by the units they concern: scoring looks only at
    // its own, which keeps 10,000 resources on 16 nodes well under 100 ms.
    for (const auto& l : config_.locations) locations_[unit(l.resource)].push_back(&l);
    for (const auto& c : config_.colocations) {
      colocations_[unit(c.resource)].push_back(&c);
      if (c.apart) colocations_[unit(c.other)].push_back(&c);
    }
  }

  Placement run() {
    for (const Unit* u : placement_order()) place(*u);
    return std::move(out_);
  }

  const std::string& obstacle() const { return obstacle_; }

  std::string unit(const std::string& name) const {
    auto it = unit_of_.find(name);
    return it == unit_of_.end() ? name : it->second;  // a group names itself
  }

 private:
  void build_units() {
    for (const auto& g : config_.groups) {
      Unit u{g.name, {}, true};
      for (const auto& m : g.resources) {
        u.members.push_back(config_.find(m));
        unit_of_[m] = g.name;
      }
      units_.push_back(u);
    }
    for (const auto& r : config_.resources) {
      if (unit_of_.count(r.name)) continue;
      unit_of_[r.name] = r.name;
      units_.push_back(Unit{r.name, {&r}, r.kind == ResourceKind::kSingleton});
    }
  }

  template <class T>
  static const std::vector<const T*>& constraints_of(
      const std::map<std::string, std::vector<const T*>>& index, const std::string& unit) {
    static const std::vector<const T*> kNone;
    auto it = index.find(unit);
    return it == index.end() ? kNone : it->second;
  }

  // A unit is placed after the units it must be colocated with; otherwise in
  // file order, which keeps the result deterministic.
  std::vector<const Unit*> placement_order() const {
    std::vector<const Unit*> order;
    std::set<std::string> done;
    while (order.size() < units_.size()) {
      bool progress = false;
      for (const auto& u : units_) {
        if (done.count(u.name)) continue;
        const auto& mine = constraints_of(colocations_, u.name);
        const bool ready = std::all_of(mine.begin(), mine.end(), [&](const ColocationSpec* c) {
          return c->apart || unit(c->resource) != u.name || done.count(unit(c->other)) ||
                 unit(c->other) == u.name;
        });
        if (!ready) continue;
        order.push_back(&u);
        done.insert(u.name);
        progress = true;
      }
      // Colocation through group members can close a loop the file check
      // cannot see: place the rest in file order.
      if (!progress) {
        for (const auto& u : units_) {
          if (done.insert(u.name).second) order.push_back(&u);
        }
      }
    }
    return order;
  }

  bool runs_on(const std::string& resource, const std::string& node, bool promoted_only) const {
    auto it = in_.running.find(resource);
    if (it == in_.running.end()) return false;
    return runs_on(it->second, node, promoted_only);
  }
  static bool runs_on(const std::vector<RunningInstance>& running, const std::string& node,
                      bool promoted_only) {
    return std::any_of(running.begin(), running.end(), [&](const RunningInstance& i) {
      return i.node == node && (!promoted_only || i.promoted);
    });
  }

  // What scoring a unit looks up, looked up once per unit rather than once
  // per node: string-keyed lookups were most of the policy's time.
  struct MemberFacts {
    const ResourceSpec* spec = nullptr;
    const std::set<std::string>* bans = nullptr;
    const std::map<std::string, int>* fails = nullptr;
    const std::string* move = nullptr;
    const std::vector<RunningInstance>* running = nullptr;
  };
  struct ColocationFacts {
    const ColocationSpec* spec = nullptr;
    std::string a;  // the unit of spec->resource
    std::string b;  // the unit of spec->other
  };
  struct UnitFacts {
    std::vector<MemberFacts> members;
    const std::vector<const LocationSpec*>* locations = nullptr;
    std::vector<ColocationFacts> colocations;
  };
  UnitFacts facts_of(const Unit& u) const {
    UnitFacts f;
    for (const ResourceSpec* r : u.members) {
      MemberFacts m;
      m.spec = r;
      if (auto it = in_.bans.find(r->name); it != in_.bans.end()) m.bans = &it->second;
      if (auto it = in_.fail_counts.find(r->name); it != in_.fail_counts.end())
        m.fails = &it->second;
      if (auto it = in_.moves.find(r->name); it != in_.moves.end()) m.move = &it->second;
      if (auto it = in_.running.find(r->name); it != in_.running.end()) m.running = &it->second;
      f.members.push_back(m);
    }
    f.locations = &constraints_of(locations_, u.name);
    for (const ColocationSpec* c : constraints_of(colocations_, u.name))
      f.colocations.push_back({c, unit(c->resource), unit(c->other)});
    return f;
  }

  static bool matches(const LocationSpec& l, const PolicyNode& n) {
    if (!l.node.empty() && l.node != n.name) return false;
    for (const auto& [k, v] : l.attributes) {
      auto it = n.attributes.find(k);
      if (it == n.attributes.end() || it->second != v) return false;
    }
    return true;
  }

  // The unit's score on a node; kNever where it may not run, with the
  // reason in `why` if asked.
  int64_t score(const Unit& u, const PolicyNode& n, std::string* why = nullptr) const {
    // The reason is put into words only when asked for: scoring is the
    // policy's inner loop (10,000 resources on 16 nodes).
    const auto never = [why](const auto& reason) {
      if (why) *why = reason();
      return kNever;
    };
    if (!n.online) return never([&] { return std::string("node " + n.name + " is offline"); });
    if (n.fencing) return never([&] { return std::string("node " + n.name + " is being fenced"); });
    if (n.standby) return never([&] { return std::string("node " + n.name + " is in standby"); });
    int64_t s = 0;
    for (const MemberFacts& m : facts_.members) {
      const ResourceSpec* r = m.spec;
      if (m.bans && m.bans->count(n.name))
        return never([&] {
          return std::string(r->name + " is banned from " + n.name + " (bulwark resource clear " +
                             r->name + ")");
        });
      if (m.fails) {
        auto f = m.fails->find(n.name);
        if (f != m.fails->end() && f->second >= r->migration_threshold)
          return never([&] {
            return std::string(r->name + " failed " + std::to_string(f->second) + " times on " +
                               n.name + " (migration_threshold " +
                               std::to_string(r->migration_threshold) +
                               "; bulwark resource cleanup " + r->name + " forgets them)");
          });
      }
      if (m.move && *m.move == n.name) s += kMoveScore;
      if (m.running && runs_on(*m.running, n.name, false)) s += r->stickiness;
    }
    for (const LocationSpec* l : *facts_.locations) {
      if (matches(*l, n)) s += l->avoid ? -l->score : l->score;
    }
    for (const ColocationFacts& cf : facts_.colocations) {
      const ColocationSpec* c = cf.spec;
      const std::string& a = cf.a;
      const std::string& b = cf.b;
      if (a == b) continue;
      if (!c->apart && a == u.name) {
        // With a unit placed before this one: only its nodes will do.
        auto it = placed_.find(b);
        if (it != placed_.end() && !it->second.count(n.name))
          return never([&] {
            return std::string(
                c->resource + " is colocated with " + c->other + ", which " +
                (it->second.empty() ? std::string("runs nowhere") : "does not run on " + n.name));
          });
      }
      if (c->apart && (a == u.name || b == u.name)) {
        auto it = placed_.find(a == u.name ? b : a);
        if (it != placed_.end() && it->second.count(n.name))
          return never([&] {
            return std::string(c->resource + " is colocated apart from " + c->other + ", and " +
                               (a == u.name ? c->other : c->resource) + " runs on " + n.name);
          });
      }
    }
    return s;
  }

  bool fencing(const std::string& node) const {
    return std::any_of(nodes_.begin(), nodes_.end(),
                       [&](const PolicyNode* n) { return n->name == node && n->fencing; });
  }

  // Nodes that may still run `resource` although we cannot reach them.
  std::vector<std::string> unsafe_holders(const std::string& resource, bool promoted_only) const {
    std::vector<std::string> out;
    for (const PolicyNode* n : nodes_) {
      if (!n->online && !n->safe_to_replace && runs_on(resource, n->name, promoted_only))
        out.push_back(n->name);
    }
    return out;
  }

  void place(const Unit& u) {
    const ResourceSpec& first = *u.members.front();
    facts_ = facts_of(u);  // what score() reads
    if (u.name == explain_unit_) explain(u);
    if (!std::all_of(u.members.begin(), u.members.end(), [&](const ResourceSpec* r) {
          return r->enabled && !in_.disabled.count(r->name);
        })) {
      record(u, {}, {}, "disabled");
      return;
    }
    if (u.exclusive) {
      place_exclusive(u);
    } else {
      place_instances(u, first);
    }
  }

  // Why `u` may not run on the explained node, as things stand when it is
  // placed (after the units it is colocated with).
  void explain(const Unit& u) {
    for (const ResourceSpec* r : u.members) {
      if (!r->enabled) {
        obstacle_ = r->name + " is disabled in the resources file";
        return;
      }
      if (in_.disabled.count(r->name)) {
        obstacle_ = r->name + " is disabled (bulwark resource enable " + r->name + ")";
        return;
      }
    }
    auto n = std::find_if(nodes_.begin(), nodes_.end(),
                          [&](const PolicyNode* p) { return p->name == explain_node_; });
    if (n == nodes_.end()) {
      obstacle_ = "no node named " + explain_node_;
      return;
    }
    std::string why;
    if (score(u, **n, &why) <= kNever) obstacle_ = why;
  }

  void place_exclusive(const Unit& u) {
    // Invariant 1. Where may a member run now? On online nodes that report
    // it, and on nodes we cannot reach that are not known to be off.
    std::set<std::string> running;
    std::string unsafe;
    for (const ResourceSpec* r : u.members) {
      for (const PolicyNode* n : nodes_) {
        if (!runs_on(r->name, n->name, false) || (!n->online && n->safe_to_replace)) continue;
        running.insert(n->name);
        if (!n->online) unsafe = n->name;
      }
    }
    if (running.size() > 1) {
      // Reported on several nodes (stale reports, a crashed daemon's
      // orphans): every one stops before it is placed anywhere.
      std::string list;
      for (const auto& n : running) list += (list.empty() ? "" : ", ") + n;
      record(u, {}, {}, "stopping on " + list + " before it runs on one node");
      return;
    }
    if (!unsafe.empty()) {
      // While the node that may still run it is not known to be off, the
      // unit stays there and starts nowhere else; placed nowhere while it
      // is being fenced.
      if (fencing(unsafe)) {
        record(u, {}, {}, "waiting until " + unsafe + " is fenced");
        return;
      }
      record(u, {unsafe}, {}, "waiting until " + unsafe + " is fenced or its lease has expired");
      return;
    }
    const PolicyNode* best = nullptr;
    int64_t best_score = kNever;
    for (const PolicyNode* n : nodes_) {
      const int64_t s = score(u, *n);
      if (s <= kNever) continue;
      // Ties go to the node with fewer exclusive units, to spread them.
      if (!best || s > best_score ||
          (s == best_score && exclusive_load_[n->name] < exclusive_load_[best->name])) {
        best = n;
        best_score = s;
      }
    }
    if (!best) {
      record(u, {}, {}, running.empty() ? "no eligible node" : "stopping: no eligible node");
      return;
    }
    // Across a move, the old node stops first; the new one is placed only
    // once no other node reports the unit running.
    if (!running.empty() && *running.begin() != best->name) {
      record(u, {}, {}, "stopping on " + *running.begin() + " before it starts on " + best->name);
      return;
    }
    ++exclusive_load_[best->name];
    record(u, {best->name}, {}, "");
  }

  void place_instances(const Unit& u, const ResourceSpec& r) {
    std::vector<std::pair<int64_t, const PolicyNode*>> eligible;
    for (const PolicyNode* n : nodes_) {
      const int64_t s = score(u, *n);
      if (s > kNever) eligible.emplace_back(s, n);
    }
    // Highest score first, then name: a stable choice when clone_max cuts.
    std::stable_sort(eligible.begin(), eligible.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    // An instance on a node we merely do not hear from (PolicyNode::
    // may_be_up) stays placed there and counts against clone_max: a few
    // missed heartbeats restart nothing. It is replaced once the node's
    // lease has provably lapsed, its record is voided or a fence begins.
    std::vector<std::string> nodes;
    for (const PolicyNode* n : nodes_) {
      if (!n->online && n->may_be_up && !n->fencing && runs_on(r.name, n->name, false))
        nodes.push_back(n->name);
    }
    if (r.clone_max > 0) {
      const std::size_t room =
          static_cast<std::size_t>(r.clone_max) - std::min(nodes.size(), std::size_t(r.clone_max));
      if (eligible.size() > room) eligible.resize(room);
    }
    for (const auto& [s, n] : eligible) nodes.push_back(n->name);
    std::vector<std::string> promoted;
    std::string reason = nodes.empty() ? "no eligible node" : "";
    if (r.kind == ResourceKind::kPromotable) {
      // A promoted instance on a node that may still run it counts against
      // promoted_max until that node is known to be off.
      // One on a node being fenced counts too, but is not named there.
      std::size_t held = 0;
      for (const auto& p : unsafe_holders(r.name, true)) {
        if (fencing(p)) {
          ++held;
        } else {
          promoted.push_back(p);
        }
      }
      const std::vector<std::string> pinned = promoted;
      std::vector<std::pair<int64_t, std::string>> candidates;
      for (const auto& [s, n] : eligible) {
        const int64_t bonus = runs_on(r.name, n->name, true) ? r.stickiness : 0;
        candidates.emplace_back(s + bonus, n->name);
      }
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      for (const auto& [s, name] : candidates) {
        if (static_cast<int>(promoted.size() + held) >= r.promoted_max) break;
        promoted.push_back(name);
      }
      if (!pinned.empty())
        reason = "a promoted instance stays on " + pinned.front() +
                 " until that node is fenced or its lease has expired";
      else if (held > 0)
        reason = "a promoted instance may run on a node being fenced";
      // More instances report (or may be) promoted than allowed (a stale
      // report, a promotion that lost its claim): every one demotes before
      // any is promoted again, whoever reported it.
      int reported = 0;
      for (const PolicyNode* n : nodes_) {
        if ((n->online || !n->safe_to_replace) && runs_on(r.name, n->name, true)) ++reported;
      }
      if (reported > r.promoted_max) {
        promoted.clear();
        reason = "demoting: " + std::to_string(reported) + " instances report promoted, at most " +
                 std::to_string(r.promoted_max) + " may be";
      }
      // A new promotion waits until every instance that loses its promotion
      // has been demoted, so promoted_max holds at every moment.
      for (const PolicyNode* n : nodes_) {
        if ((!n->online && n->safe_to_replace) || !runs_on(r.name, n->name, true)) continue;
        if (std::find(promoted.begin(), promoted.end(), n->name) != promoted.end()) continue;
        std::erase_if(promoted, [&](const std::string& p) { return !runs_on(r.name, p, true); });
        reason = "demoting on " + n->name + " before promoting elsewhere";
        break;
      }
      for (const auto& p : promoted) {
        if (std::find(nodes.begin(), nodes.end(), p) == nodes.end()) nodes.push_back(p);
      }
    }
    record(u, nodes, promoted, reason);
  }

  void record(const Unit& u, std::vector<std::string> nodes, std::vector<std::string> promoted,
              const std::string& reason) {
    std::sort(nodes.begin(), nodes.end());
    std::sort(promoted.begin(), promoted.end());
    placed_[u.name] = std::set<std::string>(nodes.begin(), nodes.end());
    for (const ResourceSpec* r : u.members) {
      out_.resources[r->name] = ResourcePlacement{nodes, promoted, reason};
    }
  }

  const PolicyInput& in_;
  const ResourceConfig& config_;
  std::vector<const PolicyNode*> nodes_;
  std::vector<Unit> units_;
  std::map<std::string, std::string> unit_of_;
  std::map<std::string, std::vector<const LocationSpec*>> locations_;
  std::map<std::string, std::vector<const ColocationSpec*>> colocations_;
  std::map<std::string, std::set<std::string>> placed_;
  std::map<std::string, int> exclusive_load_;
  Placement out_;
  std::string explain_unit_;
  std::string explain_node_;
  std::string obstacle_;
  UnitFacts facts_;  // of the unit being placed
};

}  // namespace

Placement compute_placement(const PolicyInput& input) {
  if (!input.config) return {};
  return Planner(input).run();
}

std::string placement_obstacle(const PolicyInput& input, const std::string& resource,
                               const std::string& node) {
  if (!input.config) return "no resources are applied";
  const Planner names(input);
  Planner p(input, names.unit(resource), node);
  p.run();
  return p.obstacle();
}

}  // namespace bulwark
