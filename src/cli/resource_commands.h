// `bulwark apply` and `bulwark resource ...`: the commands that change or
// show resources. Each prints what it did (or, refused, why, with the exit
// code of the reason); `apply --dry-run` and every apply print the plan
// the cluster computed: what starts, stops, moves, restarts, reloads and is
// deleted.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/cli_support.h"

namespace bulwark {

// Adds the commands to `app`; their exit code goes to `rc`.
void add_resource_commands(CLI::App& app, const GlobalOptions& g, int& rc);

}  // namespace bulwark
