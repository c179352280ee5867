#include "cli/cli_support.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/exit_codes.h"
#include "core/config.h"
#include "security/crypto.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

std::string env_or(const std::string& value, const char* name) {
  if (!value.empty()) return value;
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The error kind an API error code names ("no_quorum", ...).
Errc errc_from_name(const std::string& name, int http_status) {
  for (Errc c :
       {Errc::kInvalid, Errc::kNotFound, Errc::kConflict, Errc::kNoQuorum, Errc::kEpochSuperseded,
        Errc::kUnauthorized, Errc::kUnavailable, Errc::kTimeout, Errc::kIo}) {
    if (name == errc_name(c)) return c;
  }
  if (http_status == 401) return Errc::kUnauthorized;
  if (http_status == 400 || http_status == 404 || http_status == 422) return Errc::kInvalid;
  return Errc::kIo;
}

}  // namespace

Result<ApiClient> make_client(const GlobalOptions& g, bool need_token) {
  ApiClientOptions o;
  o.endpoints = split_list(env_or(g.endpoint, "BULWARK_ENDPOINT"));
  if (o.endpoints.empty())
    return make_error(Errc::kInvalid, "no endpoint: use --endpoint or BULWARK_ENDPOINT");
  const std::string token_file = env_or(g.token_file, "BULWARK_TOKEN_FILE");
  if (!token_file.empty()) {
    auto t = read_secret_file(token_file);
    if (!t) return t.error();
    o.token = *t;
  } else if (need_token) {
    return make_error(Errc::kUnauthorized,
                      "writes need the admin token: use --token-file or BULWARK_TOKEN_FILE");
  }
  o.ca_file = env_or(g.ca_file, "BULWARK_CA_FILE");
  if (o.ca_file.empty() && !token_file.empty()) {
    // `bulwark init` puts the CA beside the token, in tls/.
    const auto guess = std::filesystem::path(token_file).parent_path() / "tls" / "ca.crt";
    if (std::filesystem::exists(guess)) o.ca_file = guess.string();
  }
  if (o.ca_file.empty())
    return make_error(Errc::kInvalid,
                      "no CA certificate to verify the API: use --ca-file or BULWARK_CA_FILE");
  return ApiClient(o);
}

int report(const GlobalOptions& g, const Error& e) {
  if (g.json) {
    std::cout << json{{"error", {{"code", errc_name(e.code)}, {"message", e.message}}}}.dump()
              << "\n";
  } else {
    std::cerr << "bulwark: " << e.message << "\n";
  }
  return exit_code_for(e.code);
}

Call call_api(const GlobalOptions& g, const std::string& method, const std::string& path,
              const json& body) {
  const bool write = method != "GET";
  auto client = make_client(g, write);
  if (!client) return Call{report(g, client.error()), nullptr};
  auto r = client->request(method, path, body);
  if (!r) return Call{report(g, r.error()), nullptr};
  if (r->status == 200) return Call{kCliOk, r->body};
  const json err = r->body.is_object() ? r->body.value("error", json::object()) : json::object();
  const Errc code = errc_from_name(err.value("code", ""), r->status);
  const std::string msg = err.value("message", r->body.dump());
  return Call{report(g, make_error(code, write ? "refused by " + r->endpoint + " (HTTP " +
                                                     std::to_string(r->status) + "): " + msg
                                               : r->endpoint + " answered HTTP " +
                                                     std::to_string(r->status) + ": " + msg)),
              nullptr};
}

Status check_name(const std::string& what, const std::string& name) {
  if (valid_node_name(name)) return Ok{};
  return make_error(Errc::kInvalid,
                    "'" + name + "' is not a valid " + what + " name (1-63 of a-z 0-9 - _ .)");
}

}  // namespace bulwark
