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
#include "proxy_control/control_socket.h"
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

struct CtlCommand {
  const char* name;
  const char* args;  // for the usage line
  std::size_t words_min;
  std::size_t words_max;
  int weight_word;  // index of a WEIGHT argument, or -1
};

const CtlCommand kCtlCommands[] = {
    {"show", "", 1, 1, -1},
    {"reload", "", 1, 1, -1},
    {"add-server", " BACKEND SERVER ADDRESS:PORT [WEIGHT]", 4, 5, 4},
    {"remove-server", " BACKEND SERVER", 3, 3, -1},
    {"drain", " BACKEND SERVER", 3, 3, -1},
    {"ready", " BACKEND SERVER", 3, 3, -1},
    {"set-weight", " BACKEND SERVER WEIGHT", 4, 4, 3},
};

int ctl(const std::string& socket, const std::vector<std::string>& words) {
  const std::string cmd = words.empty() ? "" : words[0];
  const CtlCommand* c = nullptr;
  for (const auto& known : kCtlCommands) {
    if (cmd == known.name) c = &known;
  }
  if (!c) {
    std::fprintf(stderr,
                 "bulwark-proxy ctl: unknown command '%s' (show, reload, add-server, "
                 "remove-server, drain, ready, set-weight)\n",
                 cmd.c_str());
    return bulwark::kCliBadInput;
  }
  if (words.size() < c->words_min || words.size() > c->words_max) {
    std::fprintf(stderr, "usage: bulwark-proxy ctl --socket PATH %s%s\n", c->name, c->args);
    return bulwark::kCliBadInput;
  }
  nlohmann::json request = {{"cmd", cmd}};
  if (words.size() >= 3) {
    request["backend"] = words[1];
    request["server"] = words[2];
  }
  if (cmd == "add-server") request["address"] = words[3];
  if (c->weight_word >= 0 && words.size() > static_cast<std::size_t>(c->weight_word)) {
    try {
      request["weight"] = std::stoi(words[c->weight_word]);
    } catch (const std::exception&) {
      std::fprintf(stderr, "bulwark-proxy: weight must be an integer\n");
      return bulwark::kCliBadInput;
    }
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
