// Renders the /v1/status JSON for humans.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace bulwark {

std::string render_status(const nlohmann::json& status);

}  // namespace bulwark
