// The resources file's side of agent class `exec` (core/resource_config.h
// AgentClassSyntax): what its resources may say, read and checked where
// they stand in the file.
#pragma once

#include "core/resource_config.h"

namespace bulwark {

AgentClassSyntax exec_syntax();

}  // namespace bulwark
