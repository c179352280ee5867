// The writes of the coordinator and of the node agent, each one etcd
// transaction that compares revisions (DESIGN.md layer 3): a coordinator's
// writes are conditioned on its epoch, a node's on the version of its own
// status record. Built on `Kv`, so that bulwarkd runs them over etcd and the
// simulation (tests/sim) over its simulated etcd: the same code in both.
//
// Thread-safety: as the Kv's; StoreWrites itself holds no mutable state.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/env.h"
#include "store/etcd_client.h"
#include "store/schema.h"

namespace bulwark {

class StoreWrites {
 public:
  // `timeout_ms` is the deadline of every write here: shorter than an etcd
  // leader election, so that a request that hung on a dead leader is retried
  // as soon as a new leader can exist.
  StoreWrites(const Clock& clock, Kv& kv, Schema schema, std::string cluster_name, int timeout_ms);

  const Schema& schema() const { return schema_; }

  // --- coordinator writes: conditioned on the caller's epoch ---------------
  // Takes the coordinator epoch if the record is still `seen` (or absent).
  Result<CoordinatorRecord> claim_coordinator(const std::string& self,
                                              const std::optional<CoordinatorRecord>& seen);
  // Applies `ops` only if `mine` still is the coordinator record; otherwise
  // fails with kEpochSuperseded and changes nothing.
  Result<int64_t> coordinator_write(const CoordinatorRecord& mine, std::vector<Compare> compares,
                                    const std::vector<TxnOp>& ops);
  // Writes the schema record and the founding nodes if the cluster was never
  // initialised (as coordinator).
  Result<int64_t> initialize(const CoordinatorRecord& mine, const std::vector<NodeRecord>& nodes);

  // --- node agent writes: only ever to the node's own status key ----------
  // With `placement_revision`, the write is a claim: it succeeds only while
  // the placement record is still at that revision (kConflict otherwise),
  // so a node never starts an exclusive resource on a placement the
  // coordinator has already replaced.
  //
  // Every write replaces one known version of the record: `record_revision`
  // (its mod_revision; 0 when absent). A write that etcd applies late (held
  // up in a TCP stream by a partition, after the coordinator voided the
  // record or after a restarted daemon wrote it) then changes nothing.
  struct StatusWrite {
    bool committed = false;
    int64_t revision = 0;         // committed: the store revision of the write
    bool record_moved = false;    // not committed: the record was not at record_revision
    int64_t record_revision = 0;  // record_moved: where it is now
  };
  Result<StatusWrite> put_status(const std::string& node, const NodeStatusRecord& rec,
                                 std::optional<int64_t> placement_revision,
                                 int64_t record_revision);

 private:
  const Clock& clock_;
  Kv& kv_;
  Schema schema_;
  std::string cluster_name_;
  int timeout_ms_;
};

}  // namespace bulwark
