// The resources file's side of agent class `vip` (core/resource_config.h
// AgentClassSyntax): what its resources may say, read and checked where
// they stand in the file.
#pragma once

#include "core/resource_config.h"

namespace bulwark {

AgentClassSyntax vip_syntax();

}  // namespace bulwark
