// What the HTTP API needs from the daemon. The server turns these results
// into HTTP status codes and JSON; the daemon implements them.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace bulwark {

struct NodeAddRequest {
  std::string name;
  std::string address;
  std::map<std::string, std::string> attributes;
};

struct ApplyRequest {
  std::string text;
  std::string source;
  bool dry_run = false;       // only say what would change
  bool allow_delete = false;  // a file with no resource may delete them all
  // Refused unless the applied resources are still at this revision (two
  // operators editing copies of the file).
  std::optional<int64_t> expect_revision;
};

struct DirectiveRequest {
  std::string resource;  // cleanup: empty for every resource
  // move, ban, clear, cleanup, restart, enable, disable, manage, unmanage
  std::string action;
  std::string node;    // move, ban
  bool force = false;  // cleanup: an instance whose stop failed counts as stopped
};

class ApiBackend {
 public:
  virtual ~ApiBackend() = default;
  virtual nlohmann::json status() = 0;
  // Writes return the store revision they committed at.
  virtual Result<int64_t> add_node(const NodeAddRequest& req) = 0;
  virtual Result<int64_t> remove_node(const std::string& name) = 0;
  virtual Result<int64_t> set_node_attributes(const std::string& name,
                                              const std::map<std::string, std::string>& set,
                                              const std::vector<std::string>& unset) = 0;
  virtual Result<int64_t> set_node_mode(const std::string& name, const std::string& mode) = 0;

  // Resources: `text` is a whole resources file; `source` its name, for
  // the file:line:column of errors. The result says what changed (plan).
  virtual Result<nlohmann::json> apply_resources(const ApplyRequest& request) = 0;
  virtual Result<nlohmann::json> export_resources() = 0;
  virtual nlohmann::json resources() = 0;
  // The result has `message`: what was done, in words.
  virtual Result<nlohmann::json> resource_directive(const DirectiveRequest& request) = 0;
  virtual Result<int64_t> set_maintenance(bool enabled) = 0;
};

}  // namespace bulwark
