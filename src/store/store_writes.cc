#include "store/store_writes.h"

namespace bulwark {

StoreWrites::StoreWrites(const Clock& clock, Kv& kv, Schema schema, std::string cluster_name,
                         int timeout_ms)
    : clock_(clock),
      kv_(kv),
      schema_(std::move(schema)),
      cluster_name_(std::move(cluster_name)),
      timeout_ms_(timeout_ms) {}

Result<CoordinatorRecord> StoreWrites::claim_coordinator(
    const std::string& self, const std::optional<CoordinatorRecord>& seen) {
  CoordinatorRecord next;
  next.node = self;
  next.epoch = seen ? seen->epoch + 1 : 1;
  next.acquired_wall_ms = clock_.wall_ms();
  const Compare cmp = seen ? Compare::mod_revision(schema_.coordinator_key(), seen->mod_revision)
                           : Compare::absent(schema_.coordinator_key());
  auto r = kv_.txn({cmp}, {TxnOp::put(schema_.coordinator_key(), Schema::encode_coordinator(next))},
                   {}, timeout_ms_);
  if (!r) return r.error();
  if (!r->succeeded)
    return make_error(Errc::kConflict, "the coordinator record changed before the claim");
  next.mod_revision = r->revision;
  return next;
}

Result<int64_t> StoreWrites::coordinator_write(const CoordinatorRecord& mine,
                                               std::vector<Compare> compares,
                                               const std::vector<TxnOp>& ops) {
  compares.insert(compares.begin(),
                  Compare::mod_revision(schema_.coordinator_key(), mine.mod_revision));
  auto r = kv_.txn(compares, ops, {}, timeout_ms_);
  if (!r) return r.error();
  if (!r->succeeded) {
    // Tell a lost epoch apart from a failed compare of the caller's own.
    auto cur = kv_.get(schema_.coordinator_key(), false, timeout_ms_);
    if (cur && (cur->kvs.empty() || cur->kvs[0].mod_revision != mine.mod_revision))
      return make_error(Errc::kEpochSuperseded,
                        "coordinator epoch " + std::to_string(mine.epoch) + " was superseded");
    return make_error(Errc::kConflict, "the state changed before the coordinator write");
  }
  return r->revision;
}

Result<int64_t> StoreWrites::initialize(const CoordinatorRecord& mine,
                                        const std::vector<NodeRecord>& nodes) {
  std::vector<TxnOp> ops = {TxnOp::put(schema_.schema_key(), schema_.encode_schema(cluster_name_))};
  for (const auto& n : nodes)
    ops.push_back(TxnOp::put(schema_.node_key(n.name), Schema::encode_node(n)));
  return coordinator_write(mine, {Compare::absent(schema_.schema_key())}, ops);
}

Result<StoreWrites::StatusWrite> StoreWrites::put_status(const std::string& node,
                                                         const NodeStatusRecord& rec,
                                                         std::optional<int64_t> placement_revision,
                                                         int64_t record_revision) {
  const std::string key = schema_.status_key(node);
  std::vector<Compare> cmp = {Compare::mod_revision(key, record_revision)};
  if (placement_revision)
    cmp.push_back(Compare::mod_revision(schema_.placement_key(), *placement_revision));
  auto r = kv_.txn(cmp, {TxnOp::put(key, Schema::encode_status(rec))}, {}, timeout_ms_);
  if (!r) return r.error();
  StatusWrite out;
  if (r->succeeded) {
    out.committed = true;
    out.revision = r->revision;
    return out;
  }
  // Which compare failed: the record's (someone else wrote it) or, for a
  // claim, the placement's.
  auto current = kv_.get(key, false, timeout_ms_);
  if (!current) return current.error();
  const int64_t now_at = current->kvs.empty() ? 0 : current->kvs[0].mod_revision;
  if (now_at != record_revision) {
    out.record_moved = true;
    out.record_revision = now_at;
    return out;
  }
  return make_error(Errc::kConflict, "the placement changed before the claim");
}

}  // namespace bulwark
