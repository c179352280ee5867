// The `bulwark` command line. Talks to the cluster only through the HTTPS
// API (except `init`, `cert` and `dev`, which manage local files and
// processes).
#pragma once

namespace bulwark {

int run_cli(int argc, char** argv);

}  // namespace bulwark
