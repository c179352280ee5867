// Renders the /v1/status JSON for humans.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bulwark {

std::string render_status(const nlohmann::json& status);
// Renders the /v1/resources JSON (`bulwark resource list`) for humans.
std::string render_resources(const nlohmann::json& resources);

}  // namespace bulwark
