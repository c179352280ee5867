// Renders the /v1/status JSON for humans.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bulwark {

std::string render_status(const nlohmann::json& status);

}  // namespace bulwark
