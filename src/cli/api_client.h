// The CLI's client of the HTTPS API: tries each endpoint in order until one
// answers, sends the admin token, verifies the server against the cluster CA.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace bulwark {

struct ApiClientOptions {
  std::vector<std::string> endpoints;  // https://host:port or host:port
  std::string token;                   // may be empty for reads on loopback
  std::string ca_file;
  int timeout_ms = 30000;
};

struct ApiReply {
  int status = 0;
  nlohmann::json body;
  std::string endpoint;  // the one that answered
};

class ApiClient {
 public:
  explicit ApiClient(ApiClientOptions options) : options_(std::move(options)) {}
  // kUnavailable if no endpoint answered. An HTTP error status is a reply,
  // not an Error.
  Result<ApiReply> request(const std::string& method, const std::string& path,
                           const nlohmann::json& body = nullptr) const;

 private:
  ApiClientOptions options_;
};

// "a,b , c" -> {"a", "b", "c"}
std::vector<std::string> split_list(const std::string& s);
std::string normalize_endpoint(const std::string& e);

}  // namespace bulwark
