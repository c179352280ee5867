#include "sim/sim_store.h"

#include "classes/registry/agent_classes.h"

namespace bulwark::sim {
namespace {

template <class T>
bool compare(const T& actual, Compare::Op op, const T& expected) {
  switch (op) {
    case Compare::Op::kEqual:
      return actual == expected;
    case Compare::Op::kNotEqual:
      return actual != expected;
    case Compare::Op::kLess:
      return actual < expected;
    case Compare::Op::kGreater:
      return actual > expected;
  }
  return false;
}

}  // namespace

bool SimStore::holds(const Compare& c) const {
  const auto it = kvs_.find(c.key);
  // etcd compares a missing key as one whose revisions and version are 0;
  // a value compare on a missing key fails.
  const KeyValue absent;
  const KeyValue& kv = it == kvs_.end() ? absent : it->second;
  switch (c.target) {
    case Compare::Target::kModRevision:
      return compare(kv.mod_revision, c.op, c.number);
    case Compare::Target::kCreateRevision:
      return compare(kv.create_revision, c.op, c.number);
    case Compare::Target::kVersion:
      return compare(kv.version, c.op, c.number);
    case Compare::Target::kValue:
      return it != kvs_.end() && compare(kv.value, c.op, c.value);
  }
  return false;
}

bool SimStore::apply(const TxnOp& op) {
  // Every change of one transaction carries the revision it creates.
  const int64_t rev = revision_ + 1;
  if (op.kind == TxnOp::Kind::kPut) {
    auto [it, created] = kvs_.try_emplace(op.key);
    KeyValue& kv = it->second;
    kv.key = op.key;
    kv.value = op.value;
    if (created) kv.create_revision = rev;
    kv.mod_revision = rev;
    ++kv.version;
    return true;
  }
  if (!op.prefix) return kvs_.erase(op.key) > 0;
  bool changed = false;
  for (auto it = kvs_.lower_bound(op.key); it != kvs_.end() && it->first.rfind(op.key, 0) == 0;) {
    it = kvs_.erase(it);
    changed = true;
  }
  return changed;
}

TxnResult SimStore::txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure) {
  TxnResult r;
  r.succeeded = true;
  for (const auto& c : compares) r.succeeded = r.succeeded && holds(c);
  bool changed = false;
  for (const auto& op : r.succeeded ? success : failure) changed = apply(op) || changed;
  if (changed) ++revision_;
  r.revision = revision_;
  return r;
}

std::optional<KeyValue> SimStore::get(const std::string& key) const {
  const auto it = kvs_.find(key);
  if (it == kvs_.end()) return std::nullopt;
  return it->second;
}

std::shared_ptr<const ClusterState> SimStore::state() {
  if (state_ && state_->revision == revision_) return state_;
  auto s = std::make_shared<ClusterState>(schema_.build_state(kvs_, revision_));
  if (s->resources) {
    if (s->resources->mod_revision != parsed_resources_revision_) {
      const auto& r = *s->resources;
      auto parsed = parse_resource_config(r.text, r.source.empty() ? "resources" : r.source,
                                          agent_class_syntaxes(), ResourceFileUse::kApplied);
      parsed_resources_ =
          parsed ? std::make_shared<const ResourceConfig>(std::move(*parsed)) : nullptr;
      parsed_resources_revision_ = r.mod_revision;
    }
    s->resource_config = parsed_resources_;
    if (!parsed_resources_) s->errors.push_back(schema_.resources_key() + ": does not parse");
  }
  state_ = std::move(s);
  return state_;
}

}  // namespace bulwark::sim
