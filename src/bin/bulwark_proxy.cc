// bulwark-proxy: the load balancer. `--config FILE` runs it, `--check`
// validates the file, `ctl` talks to a running proxy's control socket.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>

#include "cli/exit_codes.h"
#include "proxy/control_server.h"
#include "proxy/proxy.h"

namespace {

using bulwark::proxy::Proxy;

int run(const std::string& path) {
  auto config = bulwark::proxy::load_proxy_config(path);
  if (!config) {
    std::fprintf(stderr, "bulwark-proxy: %s\n", config.error().message.c_str());
    return bulwark::kCliBadInput;
  }
  // Signals are taken synchronously by this thread alone: block them before
  // any other thread starts, so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  auto proxy = Proxy::start(*config);
  if (!proxy) {
    std::fprintf(stderr, "bulwark-proxy: %s\n", proxy.error().message.c_str());
    return bulwark::kCliFailed;
  }
  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      if (auto st = (*proxy)->reload_from_file(); !st)
        spdlog::error("reload refused, the running configuration stays: {}", st.error().message);
      continue;
    }
    spdlog::info("signal {}: stopping; connections in flight may finish", sig);
    (*proxy)->stop();
    return 0;
  }
}

int ctl(const std::string& socket, const std::vector<std::string>& words) {
  nlohmann::json request;
  const std::string cmd = words.empty() ? "" : words[0];
  auto arity = [&](std::size_t n, const char* usage) {
    if (words.size() != n) {
      std::fprintf(stderr, "usage: bulwark-proxy ctl --socket PATH %s\n", usage);
      return false;
    }
    return true;
  };
  if (cmd == "show" || cmd == "reload") {
    if (!arity(1, cmd == "show" ? "show" : "reload")) return bulwark::kCliBadInput;
    request = {{"cmd", cmd}};
  } else if (cmd == "add-server") {
    if (words.size() < 4 || words.size() > 5) {
      arity(0, "add-server BACKEND SERVER ADDRESS:PORT [WEIGHT]");
      return bulwark::kCliBadInput;
    }
    request = {{"cmd", cmd}, {"backend", words[1]}, {"server", words[2]}, {"address", words[3]}};
    if (words.size() == 5) {
      try {
        request["weight"] = std::stoi(words[4]);
      } catch (const std::exception&) {
        std::fprintf(stderr, "bulwark-proxy: weight must be an integer\n");
        return bulwark::kCliBadInput;
      }
    }
  } else if (cmd == "remove-server" || cmd == "drain" || cmd == "ready") {
    if (!arity(3, (cmd + " BACKEND SERVER").c_str())) return bulwark::kCliBadInput;
    request = {{"cmd", cmd}, {"backend", words[1]}, {"server", words[2]}};
  } else if (cmd == "set-weight") {
    if (!arity(4, "set-weight BACKEND SERVER WEIGHT")) return bulwark::kCliBadInput;
    request = {{"cmd", cmd}, {"backend", words[1]}, {"server", words[2]}};
    try {
      request["weight"] = std::stoi(words[3]);
    } catch (const std::exception&) {
      std::fprintf(stderr, "bulwark-proxy: weight must be an integer\n");
      return bulwark::kCliBadInput;
    }
  } else {
    std::fprintf(stderr,
                 "bulwark-proxy ctl: unknown command '%s' (show, reload, add-server, "
                 "remove-server, drain, ready, set-weight)\n",
                 cmd.c_str());
    return bulwark::kCliBadInput;
  }
  auto answer = bulwark::proxy::control_request(socket, request);
  if (!answer) {
    std::fprintf(stderr, "bulwark-proxy: %s\n", answer.error().message.c_str());
    return bulwark::kCliFailed;
  }
  if (!answer->value("ok", false)) {
    std::fprintf(stderr, "bulwark-proxy: %s\n",
                 answer->value("error", std::string("failed")).c_str());
    return bulwark::kCliFailed;
  }
  if (cmd == "show") std::cout << (*answer)["stats"].dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    spdlog::set_default_logger(spdlog::stderr_color_mt("bulwark-proxy"));
    CLI::App app{"bulwark-proxy: HTTP and TCP load balancer with health checks"};
    std::string config;
    bool check = false;
    app.add_option("--config", config, "path to the proxy configuration (YAML)");
    app.add_flag("--check", check, "validate the configuration and exit (0 valid, 2 invalid)");
    auto* ctl_cmd = app.add_subcommand("ctl", "change a running proxy through its control socket");
    std::string socket;
    std::vector<std::string> words;
    ctl_cmd->add_option("--socket", socket, "the proxy's control_socket")->required();
    ctl_cmd
        ->add_option("command", words,
                     "show | reload | add-server BACKEND SERVER ADDRESS:PORT [WEIGHT] | "
                     "remove-server BACKEND SERVER | drain BACKEND SERVER | "
                     "ready BACKEND SERVER | set-weight BACKEND SERVER WEIGHT")
        ->required();
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      const int code = app.exit(e);
      return code == 0 ? 0 : bulwark::kCliBadInput;
    }
    if (*ctl_cmd) return ctl(socket, words);
    if (config.empty()) {
      std::fprintf(stderr, "bulwark-proxy: --config is required\n");
      return bulwark::kCliBadInput;
    }
    if (check) {
      auto parsed = bulwark::proxy::load_proxy_config(config);
      if (!parsed) {
        std::fprintf(stderr, "%s\n", parsed.error().message.c_str());
        return bulwark::kCliBadInput;
      }
      std::printf("%s: valid (%zu frontends, %zu backends)\n", config.c_str(),
                  parsed->frontends.size(), parsed->backends.size());
      return 0;
    }
    return run(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bulwark-proxy: fatal: %s\n", e.what());
    return bulwark::kCliFailed;
  }
}
