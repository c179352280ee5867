// The proxy's control protocol, both ends' share: a Unix stream socket on
// which each request is one JSON object on a line and each answer another.
// A library of its own so that what controls a proxy (bulwark-proxy ctl,
// the node agent's ProxyController) does not link the data plane.
#pragma once

#include <sys/un.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace bulwark::proxy {

// The longest request line a proxy reads.
inline constexpr std::size_t kControlLineMax = 65536;

sockaddr_un control_address(const std::string& path);
// One line (up to the newline or the end of the stream), within timeout_ms
// per read; longer than kControlLineMax is refused.
Result<std::string> read_control_line(int fd, int timeout_ms);
bool write_control_line(int fd, const std::string& line);

// Sends one request to the proxy listening on `path`, returns its answer.
Result<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request);

}  // namespace bulwark::proxy
