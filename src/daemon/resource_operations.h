// The API's resource operations: `bulwark apply`, `resource list` and
// `export`, move, ban, clear, cleanup, restart, enable, disable, manage,
// unmanage, node modes and cluster maintenance. Each write is validated as
// a whole first, needs this node's quorum lease right before its
// transaction, and commits entirely or not at all; a refusal says why. A
// write that would not do what it says (a move a constraint forbids, a
// restart of what runs nowhere) is refused, not recorded.
//
// Thread-safety: any thread (the API's pool); the store serialises writes.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "api/api_backend.h"
#include "core/config.h"
#include "membership/membership.h"
#include "store/store.h"

namespace bulwark {

class ResourceOperations {
 public:
  // `require_quorum` fails when this node may not write now;
  // `committed` waits until this node's cache shows a committed write;
  // `view` is this node's membership view (what the coordinator would see);
  // `node` and `node_address` are this node's (an OCF agent's validate-all
  // runs as it would here).
  ResourceOperations(const Clock& clock, Store& store, std::function<Status()> require_quorum,
                     std::function<Result<int64_t>(Result<int64_t>)> committed,
                     std::function<MembershipView()> view, std::string ocf_root, std::string node,
                     std::string node_address);

  // {ok, revision, changed, dry_run, plan: [{resource, action, nodes, from,
  // detail}], notes: [what the operator should know]}; `revision` is the
  // resources' revision after the call.
  Result<nlohmann::json> apply(const ApplyRequest& request);
  // The applied file as it was sent: {text, source, revision, applied_wall_ms}.
  Result<nlohmann::json> export_resources() const;
  nlohmann::json list() const;
  // {ok, revision, message}: what was done, in words.
  Result<nlohmann::json> directive(const DirectiveRequest& request);
  Result<int64_t> set_maintenance(bool enabled);
  Result<int64_t> set_node_mode(const std::string& node, const std::string& mode);

 private:
  // Checks that need the cluster: known nodes, installed agents, and a
  // placement for every enabled resource with every node up. Fills the
  // reload traits of the file's OCF agents, and `notes` with what the
  // operator should know though nothing is wrong.
  Status validate(const ResourceConfig& config, const ClusterState& state,
                  const std::string& source, std::map<std::string, ReloadTraits>& reload,
                  std::vector<std::string>& notes) const;
  // The checks of a move that cannot happen; the message if it cannot.
  Status check_move(const ClusterState& state, const std::string& resource,
                    const std::vector<std::string>& names, const std::string& node) const;

  const Clock& clock_;
  Store& store_;
  std::function<Status()> require_quorum_;
  std::function<Result<int64_t>(Result<int64_t>)> committed_;
  std::function<MembershipView()> view_;
  std::string ocf_root_;
  std::string node_;
  std::string node_address_;
};

}  // namespace bulwark
