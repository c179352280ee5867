// The HTTPS/JSON API of one node. Reads are open to loopback clients and need
// the admin token from anywhere else; writes always need the token. Every
// error is JSON {"error": {"code", "message"}} with a 4xx/5xx status.
//
// Routes (v1):
//   GET    /v1/status
//   POST   /v1/nodes                    {"name", "address", "attributes"?}
//   DELETE /v1/nodes/NAME
//   PATCH  /v1/nodes/NAME/attributes    {"set": {K: V}, "unset": [K]}
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "api/api_backend.h"

namespace httplib {
class SSLServer;
}

namespace bulwark {

struct ApiServerOptions {
  std::string address;
  int port = 0;
  std::string cert_file, key_file;
  std::string admin_token;
};

class ApiServer {
 public:
  ApiServer(ApiServerOptions options, ApiBackend& backend);
  ~ApiServer();
  Status start();  // binds, then serves on its own threads
  void stop();

 private:
  void install_routes();

  ApiServerOptions options_;
  ApiBackend& backend_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
};

// HTTP status for an error code, shared with tests.
int http_status_for(Errc code);

}  // namespace bulwark
