// Tests of what `bulwark apply` says a new file would change
// (coordinator/apply_plan.h): new and deleted resources, restarts, reloads,
// updates in place, moves, and nothing for an unchanged file.
#include "coordinator/apply_plan.h"

#include <gtest/gtest.h>

#include <memory>

#include "classes/registry/agent_classes.h"

namespace bulwark {
namespace {

constexpr const char* kApplied =
    "resources:\n"
    "  - {name: web, agent: exec, command: [/bin/web], clone: {}}\n"
    "  - {name: vol, agent: exec, command: [/bin/vol]}\n"
    "  - {name: old, agent: exec, command: [/bin/old]}\n";

std::shared_ptr<const ResourceConfig> parsed(const std::string& yaml) {
  auto c = parse_resource_config(yaml, "t.yaml", agent_class_syntaxes());
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return std::make_shared<const ResourceConfig>(c.ok() ? *c : ResourceConfig{});
}

// n1 (this node), n2, n3 online; web on all three, vol on n2, old on n3.
struct Cluster {
  ClusterState state;
  MembershipView view;
  Cluster() {
    state.loaded = true;
    state.schema_version = 1;
    state.resource_config = parsed(kApplied);
    ResourcesRecord r;
    r.text = kApplied;
    state.resources = r;
    view.holds_lease = true;
    for (int i = 1; i <= 3; ++i) {
      const std::string n = "n" + std::to_string(i);
      state.nodes[n].name = n;
      state.node_keys.insert(n);
      MemberStatus m;
      m.name = n;
      m.self = i == 1;
      m.online = true;
      m.peer_holds_lease = true;
      m.incarnation = 10 + i;
      view.members.push_back(m);
      NodeStatusRecord st;
      st.probed = true;
      st.incarnation = 10 + i;
      st.resources["web"].state = InstanceState::kStarted;
      state.statuses[n] = st;
    }
    state.statuses["n2"].resources["vol"].state = InstanceState::kStarted;
    state.statuses["n3"].resources["old"].state = InstanceState::kStarted;
  }
  std::vector<std::string> plan(const std::string& yaml) const {
    std::vector<std::string> out;
    for (const PlannedChange& c : plan_apply(state, view, *parsed(yaml))) {
      std::string line = c.action + " " + c.resource;
      for (const auto& n : c.from) line += " " + n;
      if (!c.from.empty()) line += " ->";
      for (const auto& n : c.nodes) line += " " + n;
      out.push_back(line + ": " + c.detail);
    }
    return out;
  }
};

using Lines = std::vector<std::string>;

TEST(ApplyPlanTest, TheSameFileChangesNothing) { EXPECT_EQ(Cluster().plan(kApplied), Lines{}); }

TEST(ApplyPlanTest, EachKindOfChangeIsListed) {
  const Cluster c;
  EXPECT_EQ(
      c.plan("resources:\n"
             "  - {name: web, agent: exec, command: [/bin/web, --v2], clone: {}}\n"
             "  - {name: vol, agent: exec, command: [/bin/vol], monitor: {interval_ms: 300}}\n"
             "  - {name: new, agent: exec, command: [/bin/new]}\n"),
      (Lines{"restart web n1 n2 n3: command changed; one instance at a time",
             "update vol: monitor changed; nothing restarts", "start new n1: new resource",
             "delete old n3: removed from the file; stops where it runs"}));
}

TEST(ApplyPlanTest, PlacementChangesAreMovesStartsAndStops) {
  const Cluster c;
  EXPECT_EQ(
      c.plan(std::string(kApplied) + "constraints:\n"
                                     "  - {location: vol, prefer: {node: n3}, score: 2000}\n"),
      Lines{"move vol n2 -> n3: placement changed"});
  EXPECT_EQ(c.plan("resources:\n"
                   "  - {name: web, agent: exec, command: [/bin/web], clone: {max: 2}}\n"
                   "  - {name: vol, agent: exec, command: [/bin/vol], enabled: false}\n"
                   "  - {name: old, agent: exec, command: [/bin/old]}\n"),
            (Lines{"update web: instance counts changed; nothing restarts",
                   "stop web n3: placement changed",
                   "update vol: enabled changed; nothing restarts", "stop vol n2: disabled"}));
}

}  // namespace
}  // namespace bulwark
