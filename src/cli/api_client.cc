#include "cli/api_client.h"

#include <httplib.h>

#include "core/json_input.h"

namespace bulwark {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      while (!cur.empty() && cur.back() == ' ') cur.pop_back();
      while (!cur.empty() && cur.front() == ' ') cur.erase(cur.begin());
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  return out;
}

std::string normalize_endpoint(const std::string& e) {
  if (e.find("://") != std::string::npos) return e;
  return "https://" + e;
}

Result<ApiReply> ApiClient::request(const std::string& method, const std::string& path,
                                    const nlohmann::json& body) const {
  if (options_.endpoints.empty())
    return make_error(Errc::kInvalid, "no endpoint: use --endpoint or BULWARK_ENDPOINT");
  std::string failures;
  for (const auto& raw : options_.endpoints) {
    const std::string ep = normalize_endpoint(raw);
    httplib::Client cli(ep);
    if (!options_.ca_file.empty()) cli.set_ca_cert_path(options_.ca_file);
    cli.enable_server_certificate_verification(true);
    const time_t sec = options_.timeout_ms / 1000;
    cli.set_connection_timeout(2, 0);
    cli.set_read_timeout(sec, 0);
    cli.set_write_timeout(sec, 0);
    httplib::Headers headers;
    if (!options_.token.empty()) headers.emplace("Authorization", "Bearer " + options_.token);
    const std::string payload = body.is_null() ? "" : body.dump();
    httplib::Result res{nullptr, httplib::Error::Unknown};
    if (method == "GET") {
      res = cli.Get(path, headers);
    } else if (method == "POST") {
      res = cli.Post(path, headers, payload, "application/json");
    } else if (method == "PUT") {
      res = cli.Put(path, headers, payload, "application/json");
    } else if (method == "PATCH") {
      res = cli.Patch(path, headers, payload, "application/json");
    } else if (method == "DELETE") {
      res = cli.Delete(path, headers);
    } else {
      return make_error(Errc::kInvalid, "unsupported method " + method);
    }
    if (!res) {
      failures += (failures.empty() ? "" : "; ") + ep + ": " + httplib::to_string(res.error());
      // Only a request that cannot have been processed moves on: a write that
      // timed out after it was sent may have been committed.
      if (method != "GET" && res.error() == httplib::Error::Read)
        return make_error(Errc::kTimeout,
                          ep + ": no answer in time; the write may or may not have been committed");
      continue;
    }
    ApiReply reply;
    reply.status = res->status;
    reply.endpoint = ep;
    reply.body = parse_json_input(res->body);
    if (reply.body.is_discarded()) reply.body = nlohmann::json{{"raw", res->body}};
    return reply;
  }
  return make_error(Errc::kUnavailable, "no node answered: " + failures);
}

}  // namespace bulwark
