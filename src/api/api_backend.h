// What the HTTP API needs from the daemon. The server turns these results
// into HTTP status codes and JSON; the daemon implements them.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace bulwark {

struct NodeAddRequest {
  std::string name;
  std::string address;
  std::map<std::string, std::string> attributes;
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
  // the file:line:column of errors.
  virtual Result<int64_t> apply_resources(const std::string& text, const std::string& source) = 0;
  virtual nlohmann::json resources() = 0;
  // action: move, ban (both need `node`), clear, cleanup.
  virtual Result<int64_t> resource_directive(const std::string& resource, const std::string& action,
                                             const std::string& node) = 0;
  virtual Result<int64_t> set_maintenance(bool enabled) = 0;
};

}  // namespace bulwark
