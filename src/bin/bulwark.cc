#include "cli/cli.h"

int main(int argc, char** argv) { return bulwark::run_cli(argc, argv); }
