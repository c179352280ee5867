// Every agent class bulwarkd runs, as the resources file knows them: what
// `bulwark apply`, the daemon and the store's reading of the applied file
// parse with (core/resource_config.h parse_resource_config). Their runners
// are registered by bulwarkd (src/daemon).
#pragma once

#include "core/resource_config.h"

namespace bulwark {

// exec, ocf, systemd, vip and proxy, in the order messages list them.
const AgentClassSyntaxes& agent_class_syntaxes();

}  // namespace bulwark
