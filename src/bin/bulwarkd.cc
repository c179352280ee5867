#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "daemon/daemon.h"

int main(int argc, char** argv) {
  try {
    // Logs, errors included, go to stderr; bulwark dev and systemd capture it.
    spdlog::set_default_logger(spdlog::stderr_color_mt("bulwarkd"));
    CLI::App app{"bulwarkd: the Bulwark node daemon"};
    std::string config, node;
    app.add_option("--config", config, "path to bulwark.yaml")->required();
    app.add_option("--node", node, "this node's name in the configuration")->required();
    bulwark::DaemonOptions options;
    app.add_flag("--detach-resources", options.detach_resources,
                 "on SIGTERM/SIGINT leave this node's resources running (the node is put in "
                 "maintenance first) for the next bulwarkd to adopt");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      const int code = app.exit(e);
      return code == 0 ? 0 : bulwark::kExitBadInput;
    }
    return bulwark::run_daemon(config, node, options);
  } catch (const std::exception& e) {
    // Errors are values inside; an exception here is a bug, but it must
    // still end the process with a message, not std::terminate.
    std::fprintf(stderr, "bulwarkd: fatal: %s\n", e.what());
    return bulwark::kExitFailure;
  }
}
