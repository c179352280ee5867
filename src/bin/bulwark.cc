#include "cli/cli.h"

#include <csignal>

int main(int argc, char** argv) {
  // A server closing its side of a TLS connection must be a write error,
  // not the end of the process.
  std::signal(SIGPIPE, SIG_IGN);
  return bulwark::run_cli(argc, argv);
}
