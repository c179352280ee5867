// Tests of what a definition change means for a running instance
// (core/resource_change.h), the rule the node agent and `apply --dry-run`
// share.
#include "core/resource_change.h"

#include <gtest/gtest.h>

#include "classes/registry/agent_classes.h"

namespace bulwark {
namespace {

ResourceSpec one(const std::string& yaml) {
  auto c =
      parse_resource_config("resources:\n  - " + yaml + "\n", "t.yaml", agent_class_syntaxes());
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? c->resources.front() : ResourceSpec{};
}

TEST(ResourceChangeTest, WhatChangesWhatRunsRestarts) {
  const ResourceSpec base =
      one("{name: a, agent: exec, command: [/bin/a, x], params: {K: v}, user: u}");
  struct Case {
    const char* yaml;
    const char* what;
  };
  const Case cases[] = {
      {"{name: a, agent: exec, command: [/bin/a, y], params: {K: v}, user: u}", "command"},
      {"{name: a, agent: exec, command: [/bin/a, x], params: {K: w}, user: u}", "params (K)"},
      {"{name: a, agent: exec, command: [/bin/a, x], params: {}, user: u}", "params (K)"},
      {"{name: a, agent: exec, command: [/bin/a, x], params: {K: v}, user: v}", "user"},
      {"{name: a, agent: exec, command: [/bin/a, x], params: {K: v}, user: u, "
       "working_dir: /tmp}",
       "working_dir"},
      {"{name: a, agent: exec, command: [/bin/a, x], params: {K: v}, user: u, clone: {}}", "kind"},
      {"{name: a, agent: 'ocf:h:a', params: {K: v}, user: u}", "agent"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.yaml);
    const SpecChange c = compare_specs(base, one(k.yaml));
    EXPECT_EQ(c.effect, ChangeEffect::kRestart);
    EXPECT_NE(c.describe().find(k.what), std::string::npos) << c.describe();
    EXPECT_NE(run_fingerprint(base), run_fingerprint(one(k.yaml)));
  }
}

TEST(ResourceChangeTest, WhatOnlyBulwarkUsesUpdatesInPlace) {
  const ResourceSpec base = one("{name: a, agent: exec, command: [/bin/a], clone: {}}");
  for (const char* yaml :
       {"{name: a, agent: exec, command: [/bin/a], clone: {}, monitor: {interval_ms: 700}}",
        "{name: a, agent: exec, command: [/bin/a], clone: {max: 2}}",
        "{name: a, agent: exec, command: [/bin/a], clone: {}, stop_timeout_ms: 5000}",
        "{name: a, agent: exec, command: [/bin/a], clone: {}, migration_threshold: 9}",
        "{name: a, agent: exec, command: [/bin/a], clone: {}, enabled: false}"}) {
    SCOPED_TRACE(yaml);
    EXPECT_EQ(compare_specs(base, one(yaml)).effect, ChangeEffect::kUpdate);
    EXPECT_EQ(run_fingerprint(base), run_fingerprint(one(yaml)));
  }
  EXPECT_EQ(compare_specs(base, base).effect, ChangeEffect::kNone);
  EXPECT_EQ(compare_specs(base, base).describe(), "");
}

TEST(ResourceChangeTest, OnlyReloadableParametersOfAnAgentThatReloadsReload) {
  const ResourceSpec base = one("{name: d, agent: 'ocf:h:d', params: {state: a, fake: '1'}}");
  ResourceSpec next = one("{name: d, agent: 'ocf:h:d', params: {state: a, fake: '2'}}");
  // Without reload traits (the agent cannot reload): a restart.
  EXPECT_EQ(compare_specs(base, next).effect, ChangeEffect::kRestart);
  next.agent.reload = ReloadTraits{"reload", {"fake"}};
  const SpecChange c = compare_specs(base, next);
  EXPECT_EQ(c.effect, ChangeEffect::kReload);
  EXPECT_EQ(c.describe(), "params (fake)");
  // One parameter that is not reloadable: a restart.
  ResourceSpec both = one("{name: d, agent: 'ocf:h:d', params: {state: b, fake: '2'}}");
  both.agent.reload = next.agent.reload;
  EXPECT_EQ(compare_specs(base, both).effect, ChangeEffect::kRestart);
  EXPECT_EQ(compare_specs(base, both).describe(), "params (fake, state)");
  // A reload together with a monitor change: a reload, both listed.
  ResourceSpec monitored = one(
      "{name: d, agent: 'ocf:h:d', params: {state: a, fake: '2'}, monitor: {interval_ms: 300}}");
  monitored.agent.reload = next.agent.reload;
  EXPECT_EQ(compare_specs(base, monitored).effect, ChangeEffect::kReload);
  EXPECT_EQ(compare_specs(base, monitored).describe(), "params (fake), monitor");
}

}  // namespace
}  // namespace bulwark
