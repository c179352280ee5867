// The API's resource operations: `bulwark apply`, `resource list`, move, ban,
// clear, cleanup, node modes and cluster maintenance. Each write is
// validated as a whole first, needs this node's quorum lease right before
// its transaction, and commits entirely or not at all.
//
// Thread-safety: any thread (the API's pool); the store serialises writes.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/config.h"
#include "store/store.h"

namespace bulwark {

class ResourceOperations {
 public:
  // `require_quorum` fails when this node may not write now;
  // `committed` waits until this node's cache shows a committed write.
  ResourceOperations(const Clock& clock, Store& store, std::function<Status()> require_quorum,
                     std::function<Result<int64_t>(Result<int64_t>)> committed,
                     std::string ocf_root);

  Result<int64_t> apply(const std::string& text, const std::string& source);
  nlohmann::json list() const;
  Result<int64_t> directive(const std::string& resource, const std::string& action,
                            const std::string& node);
  Result<int64_t> set_maintenance(bool enabled);
  Result<int64_t> set_node_mode(const std::string& node, const std::string& mode);

 private:
  // Checks that need the cluster: known nodes, installed agents, and a
  // placement for every enabled resource with every node up.
  Status validate(const ResourceConfig& config, const ClusterState& state,
                  const std::string& source) const;

  struct OcfParameters {
    std::set<std::string> all;
    std::set<std::string> required;
    std::set<std::string> actions;
  };
  // The parameters and actions an OCF agent declares in its meta-data.
  Result<OcfParameters> ocf_parameters(const std::string& script) const;
  // The agent's validate-all with the resource's params: refused only when
  // the agent says the configuration is invalid everywhere.
  Status ocf_validate(const std::string& script, const ResourceSpec& r) const;

  const Clock& clock_;
  Store& store_;
  std::function<Status()> require_quorum_;
  std::function<Result<int64_t>(Result<int64_t>)> committed_;
  std::string ocf_root_;
};

}  // namespace bulwark
