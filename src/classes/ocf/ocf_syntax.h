// The resources file's side of agent class `ocf` (core/resource_config.h
// AgentClassSyntax): what its resources may say, read and checked where
// they stand in the file.
#pragma once

#include "core/resource_config.h"

namespace bulwark {

AgentClassSyntax ocf_syntax();

}  // namespace bulwark
