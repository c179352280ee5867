// The checks `apply` makes of an `ocf` resource against its agent on this
// node, before anything is committed: the agent is installed, takes the
// parameters given (its meta-data), gets the required ones, offers the
// actions a promotable needs (promote, demote), and its validate-all, given
// the parameters as this node would run them, does not say the
// configuration is invalid everywhere.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/operation.h"
#include "core/error.h"
#include "core/resource_config.h"

namespace bulwark {

// What an OCF agent declares in its meta-data.
struct OcfAgentInfo {
  std::set<std::string> all;       // its parameters
  std::set<std::string> required;  // required="1"
  std::set<std::string> actions;
  ReloadTraits reload;  // Pacemaker's rule: reload-agent, else legacy reload
};

class OcfChecker {
 public:
  // `node` and `node_address`: this node's, for the ${BULWARK_...} in params.
  OcfChecker(std::string ocf_root, std::string node, std::string node_address)
      : ocf_root_(std::move(ocf_root)),
        node_(std::move(node)),
        node_address_(std::move(node_address)) {}

  // Checks resource `r` (class ocf); `what` begins each error ("FILE:
  // resource NAME: agent ocf:P:T"). Each agent's meta-data is read once
  // per checker.
  Status check(const ResourceSpec& r, const std::string& what);
  // The reload traits of each agent checked that has a reload action, by
  // agent name (ocf:PROVIDER:TYPE).
  const std::map<std::string, ReloadTraits>& reload() const { return reload_; }
  // What the operator should know though nothing is wrong: an agent asked
  // for notifications that does not declare a notify action (many
  // implement it regardless, as rabbitmq-cluster does; Pacemaker calls it
  // anyway, and so does Bulwark).
  const std::vector<std::string>& notes() const { return notes_; }

  // The agent's meta-data.
  Result<OcfAgentInfo> describe(const std::string& script) const;
  // The agent's validate-all with the resource's params, expanded for this
  // node: refused only when the agent says the configuration is invalid
  // everywhere.
  Status validate_all(const std::string& script, const ResourceSpec& r) const;

 private:
  std::string ocf_root_;
  std::string node_;
  std::string node_address_;
  std::map<std::string, Result<OcfAgentInfo>> described_;  // by script
  std::map<std::string, ReloadTraits> reload_;
  std::vector<std::string> notes_;
};

}  // namespace bulwark
