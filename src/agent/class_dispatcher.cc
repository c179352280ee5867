#include "agent/class_dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>

#include "agent/running_record.h"
#include "core/check.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;

}  // namespace

ClassDispatcher::ClassDispatcher(const Clock& clock, EventLoop& loop,
                                 ClassDispatcherOptions options)
    : options_(std::move(options)) {
  std::error_code ec;
  fs::create_directories(options_.runtime_dir, ec);
  fs::create_directories(options_.log_dir, ec);
  for (const auto& [agent_class, make] : options_.classes) {
    const uint64_t index = classes_.size();
    BW_CHECK(index < 16, "at most 16 agent classes");
    classes_.emplace_back(agent_class,
                          make(ClassContext{.clock = clock,
                                            .loop = loop,
                                            .runtime_dir = options_.runtime_dir,
                                            .log_dir = options_.log_dir,
                                            .inherited_env = options_.inherited_env,
                                            .tag_base = kTagRunner | (index << kClassShift)}));
  }
}

ClassRunner* ClassDispatcher::runner_of(AgentClass agent_class) const {
  for (const auto& [k, runner] : classes_) {
    if (k == agent_class) return runner.get();
  }
  return nullptr;
}

std::string ClassDispatcher::definition_file(const std::string& resource) const {
  return options_.runtime_dir + "/" + resource + ".definition.json";
}

std::optional<RunningDefinition> ClassDispatcher::recorded(const std::string& resource) const {
  for (const auto& [k, runner] : classes_) {
    if (!runner->records_definitions()) continue;
    if (auto d = runner->recorded(resource)) return d;
  }
  const std::string path = definition_file(resource);
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return read_running(in, path);
}

void ClassDispatcher::record_definition(const OpCompletion& c) {
  auto it = recording_.find(c.id);
  if (it == recording_.end()) return;
  const OpRequest r = std::move(it->second);
  recording_.erase(it);
  const ClassRunner* runner = runner_of(r.spec.agent.agent_class);
  if (runner && runner->records_definitions()) return;
  const std::string path = definition_file(r.vars.resource);
  std::error_code ec;
  if (r.kind == OpKind::kStop) {
    if (c.outcome == OpOutcome::kOk || c.outcome == OpOutcome::kNotRunning) fs::remove(path, ec);
    return;
  }
  // A failed start may have left something running: what it was started
  // with is what a stop must use.
  if (r.kind == OpKind::kReload && c.outcome != OpOutcome::kOk) return;
  // Written in place: a record torn by a crash reads as unknown.
  std::ofstream out(path, std::ios::trunc);
  out << encode_running(RunningDefinition{r.spec, r.restart_generation}) << "\n";
  if (!out) spdlog::warn("agent: cannot record {}", path);
}

void ClassDispatcher::begin(const OpRequest& request) {
  ClassRunner* runner = runner_of(request.spec.agent.agent_class);
  if (!runner) {
    completions_.push_back(OpCompletion{
        request.id, request.vars.resource, request.kind, OpOutcome::kFailed,
        std::string("agent class ") + agent_class_name(request.spec.agent.agent_class) +
            " is not available in this process"});
    return;
  }
  if (request.kind == OpKind::kStart || request.kind == OpKind::kReload ||
      request.kind == OpKind::kStop)
    recording_[request.id] = request;
  runner->begin(request);
}

void ClassDispatcher::cancel(uint64_t id) {
  for (auto& [agent_class, runner] : classes_) runner->cancel(id);
  // A cancelled start may have started it: what it ran with stays recorded.
  if (auto r = recording_.find(id); r != recording_.end()) {
    if (r->second.kind == OpKind::kStart)
      record_definition(
          OpCompletion{id, r->second.vars.resource, OpKind::kStart, OpOutcome::kOk, ""});
    recording_.erase(id);
  }
}

void ClassDispatcher::on_event(uint64_t tag, uint32_t events) {
  const uint64_t index = (tag >> kClassShift) & 0xF;
  if (index < classes_.size()) classes_[index].second->on_event(tag, events);
}

void ClassDispatcher::tick() {
  for (auto& [agent_class, runner] : classes_) runner->tick();
}

int64_t ClassDispatcher::next_deadline_ms() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (const auto& [agent_class, runner] : classes_)
    next = std::min(next, runner->next_deadline_ms());
  return next;
}

std::vector<OpCompletion> ClassDispatcher::take_completions() {
  std::vector<OpCompletion> out;
  out.swap(completions_);
  for (auto& [agent_class, runner] : classes_) runner->take_completions(out);
  for (const OpCompletion& c : out) record_definition(c);
  return out;
}

void ClassDispatcher::follow(const ClusterState& state, const std::string& self,
                             const NodeStatusRecord& local) {
  for (auto& [agent_class, runner] : classes_) runner->follow(state, self, local);
}

std::vector<ServerDrain> ClassDispatcher::take_drained() {
  std::vector<ServerDrain> out;
  for (auto& [agent_class, runner] : classes_) {
    for (auto& d : runner->take_drained()) out.push_back(std::move(d));
  }
  return out;
}

}  // namespace bulwark
