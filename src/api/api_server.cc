#include "api/api_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "core/config.h"
#include "core/json_input.h"
#include "security/crypto.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

// Room for a resources file of a few thousand resources (etcd keeps values
// up to 1.5 MiB).
constexpr std::size_t kBodyBytesMax = std::size_t{1024} * 1024;
constexpr int kApiThreads = 4;

void send_error(httplib::Response& res, int status, Errc code, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", {{"code", errc_name(code)}, {"message", message}}}}.dump() + "\n",
                  "application/json");
}

void send_result(httplib::Response& res, const Result<int64_t>& r) {
  if (!r) {
    send_error(res, http_status_for(r.error().code), r.error().code, r.error().message);
    return;
  }
  res.set_content(json{{"ok", true}, {"revision", *r}}.dump() + "\n", "application/json");
}

void send_result(httplib::Response& res, const Result<json>& r) {
  if (!r) {
    send_error(res, http_status_for(r.error().code), r.error().code, r.error().message);
    return;
  }
  res.set_content(r->dump() + "\n", "application/json");
}

// body[field] as a boolean (absent: false); nullopt if it is not one.
std::optional<bool> flag(const json& body, const char* field) {
  if (!body.contains(field)) return false;
  if (!body[field].is_boolean()) return std::nullopt;
  return body[field].get<bool>();
}

// Reads body[field], an optional object of string values (node attributes).
// On a wrong shape, the message for a 400.
Result<std::map<std::string, std::string>> string_map(const json& body, const char* field) {
  std::map<std::string, std::string> out;
  if (!body.contains(field)) return out;
  if (!body[field].is_object())
    return make_error(Errc::kInvalid, std::string(field) + " must be an object of strings");
  for (const auto& [k, v] : body[field].items()) {
    if (!v.is_string()) return make_error(Errc::kInvalid, "attribute '" + k + "' must be a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

bool loopback(const std::string& addr) {
  return addr.rfind("127.", 0) == 0 || addr == "::1" || addr.rfind("::ffff:127.", 0) == 0;
}

}  // namespace

int http_status_for(Errc code) {
  switch (code) {
    case Errc::kInvalid:
      return 422;
    case Errc::kNotFound:
      return 404;
    case Errc::kConflict:
      return 409;
    case Errc::kNoQuorum:
      return 503;
    case Errc::kEpochSuperseded:
      return 409;
    case Errc::kUnauthorized:
      return 401;
    case Errc::kUnavailable:
      return 503;
    case Errc::kTimeout:
      return 504;
    case Errc::kIo:
      return 500;
  }
  return 500;
}

ApiServer::ApiServer(ApiServerOptions options, ApiBackend& backend)
    : options_(std::move(options)), backend_(backend) {}

ApiServer::~ApiServer() { stop(); }

void ApiServer::install_routes() {
  auto& s = *server_;
  // Authentication runs before any route: a request that fails it never
  // reaches a handler.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool read = req.method == "GET" || req.method == "HEAD";
    if (read && loopback(req.remote_addr)) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) != 0 ||
        !constant_time_equal(auth.substr(prefix.size()), options_.admin_token)) {
      send_error(res, 401, Errc::kUnauthorized,
                 read ? "reads from outside loopback need the admin token"
                      : "writes need the admin token (Authorization: Bearer TOKEN)");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.body.size() > kBodyBytesMax) {
      send_error(res, 413, Errc::kInvalid, "request body too large");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  s.Get("/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(backend_.status().dump() + "\n", "application/json");
  });

  s.Post("/v1/nodes", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = parse_json_input(req.body);
    if (!body.is_object())
      return send_error(res, 400, Errc::kInvalid, "body must be a JSON object");
    NodeAddRequest add;
    if (!body.contains("name") || !body["name"].is_string() || !body.contains("address") ||
        !body["address"].is_string())
      return send_error(res, 400, Errc::kInvalid, "name and address (strings) are required");
    add.name = body["name"];
    add.address = body["address"];
    auto attributes = string_map(body, "attributes");
    if (!attributes) return send_error(res, 400, Errc::kInvalid, attributes.error().message);
    add.attributes = *attributes;
    send_result(res, backend_.add_node(add));
  });

  s.Delete(R"(/v1/nodes/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    send_result(res, backend_.remove_node(req.matches[1]));
  });

  s.Patch(R"(/v1/nodes/([^/]+)/attributes)",
          [this](const httplib::Request& req, httplib::Response& res) {
            const json body = parse_json_input(req.body);
            if (!body.is_object())
              return send_error(res, 400, Errc::kInvalid, "body must be a JSON object");
            auto set = string_map(body, "set");
            if (!set) return send_error(res, 400, Errc::kInvalid, set.error().message);
            std::vector<std::string> unset;
            if (body.contains("unset")) {
              if (!body["unset"].is_array())
                return send_error(res, 400, Errc::kInvalid, "unset must be a list of keys");
              for (const auto& k : body["unset"]) {
                if (!k.is_string())
                  return send_error(res, 400, Errc::kInvalid, "unset keys must be strings");
                unset.push_back(k.get<std::string>());
              }
            }
            if (set->empty() && unset.empty())
              return send_error(res, 400, Errc::kInvalid, "nothing to change");
            send_result(res, backend_.set_node_attributes(req.matches[1], *set, unset));
          });

  s.Put(R"(/v1/nodes/([^/]+)/mode)", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = parse_json_input(req.body);
    if (!body.is_object() || !body.contains("mode") || !body["mode"].is_string())
      return send_error(res, 400, Errc::kInvalid,
                        "body must be {\"mode\": \"online|standby|maintenance\"}");
    send_result(res, backend_.set_node_mode(req.matches[1], body["mode"].get<std::string>()));
  });

  s.Put("/v1/resources", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = parse_json_input(req.body);
    if (!body.is_object() || !body.contains("text") || !body["text"].is_string())
      return send_error(res, 400, Errc::kInvalid, "body must be {\"text\": RESOURCES_YAML}");
    ApplyRequest apply;
    apply.text = body["text"].get<std::string>();
    apply.source = body.contains("source") && body["source"].is_string()
                       ? body["source"].get<std::string>()
                       : "resources";
    const auto dry_run = flag(body, "dry_run");
    const auto allow_delete = flag(body, "allow_delete");
    if (!dry_run || !allow_delete)
      return send_error(res, 400, Errc::kInvalid, "dry_run and allow_delete must be booleans");
    apply.dry_run = *dry_run;
    apply.allow_delete = *allow_delete;
    if (body.contains("expect_revision")) {
      if (!body["expect_revision"].is_number_integer())
        return send_error(res, 400, Errc::kInvalid, "expect_revision must be an integer");
      apply.expect_revision = body["expect_revision"].get<int64_t>();
    }
    send_result(res, backend_.apply_resources(apply));
  });

  s.Get("/v1/resources", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(backend_.resources().dump() + "\n", "application/json");
  });

  s.Get("/v1/resources/export", [this](const httplib::Request&, httplib::Response& res) {
    send_result(res, backend_.export_resources());
  });

  // One resource (or group); cleanup also for every resource at once.
  const auto directive = [this](const httplib::Request& req, httplib::Response& res,
                                const std::string& resource, const std::string& action) {
    const json body = req.body.empty() ? json::object() : parse_json_input(req.body);
    if (!body.is_object() || (body.contains("node") && !body["node"].is_string()))
      return send_error(res, 400, Errc::kInvalid,
                        "body must be {\"node\": NAME, \"force\": BOOL} or empty");
    const auto force = flag(body, "force");
    if (!force) return send_error(res, 400, Errc::kInvalid, "force must be a boolean");
    DirectiveRequest d;
    d.resource = resource;
    d.action = action;
    d.node = body.value("node", "");
    d.force = *force;
    send_result(res, backend_.resource_directive(d));
  };
  s.Post(R"(/v1/resources/([^/]+)/(move|ban|clear|cleanup|restart|enable|disable|manage|unmanage))",
         [directive](const httplib::Request& req, httplib::Response& res) {
           directive(req, res, req.matches[1], req.matches[2]);
         });
  s.Post("/v1/resources/cleanup", [directive](const httplib::Request& req, httplib::Response& res) {
    directive(req, res, "", "cleanup");
  });

  s.Put("/v1/maintenance", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = parse_json_input(req.body);
    if (!body.is_object() || !body.contains("enabled") || !body["enabled"].is_boolean())
      return send_error(res, 400, Errc::kInvalid, "body must be {\"enabled\": true|false}");
    send_result(res, backend_.set_maintenance(body["enabled"].get<bool>()));
  });

  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string msg =
        res.status == 404 ? "no such route: " + req.method + " " + req.path : "request refused";
    send_error(res, res.status, res.status == 404 ? Errc::kNotFound : Errc::kInvalid, msg);
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, const std::exception_ptr& ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("api: handler failed: {}", what);
        send_error(res, 500, Errc::kIo, "internal error: " + what);
      });
}

Status ApiServer::start() {
  server_ =
      std::make_unique<httplib::SSLServer>(options_.cert_file.c_str(), options_.key_file.c_str());
  if (!server_->is_valid())
    return make_error(Errc::kInvalid, "cannot load API certificate " + options_.cert_file);
  server_->new_task_queue = [] { return new httplib::ThreadPool(kApiThreads); };
  server_->set_payload_max_length(kBodyBytesMax);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_keep_alive_timeout(5);
  server_->set_tcp_nodelay(true);
  // httplib's accept loop wakes every 10 ms by default; stop() closes the
  // socket, which wakes it anyway, so a slow idle tick costs nothing.
  server_->set_idle_interval(1, 0);
  install_routes();
  if (!server_->bind_to_port(options_.address, options_.port))
    return make_error(Errc::kIo, "cannot bind the API to " + options_.address + ":" +
                                     std::to_string(options_.port) + " (in use?)");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Ok{};
}

void ApiServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace bulwark
