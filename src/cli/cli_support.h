// What every API command of the CLI shares: the global options, the client
// they make, and one way to send a request and report its failure (as one
// line on stderr, or as JSON on stdout with --json) with the exit code the
// error kind gets (exit_codes.h).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/api_client.h"
#include "core/error.h"

namespace bulwark {

struct GlobalOptions {
  std::string endpoint;
  std::string token_file;
  std::string ca_file;
  bool json = false;
};

Result<ApiClient> make_client(const GlobalOptions& g, bool need_token);

// Prints `e` (with --json as {"error": {"code", "message"}} on stdout) and
// returns its exit code.
int report(const GlobalOptions& g, const Error& e);

// The outcome of one API call: the reply's body, or the exit code of a
// failure already reported.
struct Call {
  int rc = 0;  // kCliOk on success
  nlohmann::json body;
  bool ok() const { return rc == 0; }
};
// Sends `method path` (writes with the admin token) and reports a failure.
Call call_api(const GlobalOptions& g, const std::string& method, const std::string& path,
              const nlohmann::json& body = nullptr);

// Node and resource names go into URL paths: anything that is not a valid
// name is refused before it can turn into another path or a query string.
Status check_name(const std::string& what, const std::string& name);

}  // namespace bulwark
