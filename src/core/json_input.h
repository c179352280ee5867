// JSON that comes from outside the process (etcd's records and answers,
// API request bodies, files, the proxy's control socket), parsed without
// exceptions. A number that no integer field could hold is refused with
// the document: nlohmann's get<int64_t>() of 1e69 converts a double out of
// range, which is undefined behaviour (found by fuzz_records). Records and
// requests carry integers only; a float within range reads as its integer
// part, as before.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <string_view>

namespace bulwark {

namespace json_input_detail {

inline bool integers_fit(const nlohmann::json& j) {
  if (j.is_number_float()) {
    // Strictly inside int64's range (2^63 is not representable).
    constexpr double kLimit = 9223372036854775808.0;
    const double v = j.get<double>();
    return v > -kLimit && v < kLimit;
  }
  if (j.is_structured()) {
    for (const auto& e : j) {
      if (!integers_fit(e)) return false;
    }
  }
  return true;
}

}  // namespace json_input_detail

// The document, or a discarded value (is_discarded()) when `text` is not
// JSON or holds a number out of every integer's range.
inline nlohmann::json parse_json_input(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || json_input_detail::integers_fit(j)) return j;
  return nlohmann::json(nlohmann::json::value_t::discarded);
}

}  // namespace bulwark
