// The control socket's server (the protocol and its client:
// src/proxy_control): a Unix stream socket on which each line is a JSON
// request and each answer a JSON line. Only the owner of the socket file
// (mode 0600) can connect, so it needs no token. One thread, one client at a
// time: control traffic is rare and tiny.
#pragma once

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/error.h"

namespace bulwark::proxy {

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  ~ControlServer();
  Status start(const std::string& path, Handler handler);
  void stop();

 private:
  void run();
  void serve(int fd);

  std::string path_;
  Handler handler_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
};

}  // namespace bulwark::proxy
