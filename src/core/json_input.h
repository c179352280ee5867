// JSON that comes from outside the process (etcd's records and answers,
// API request bodies, files, the proxy's control socket), parsed without
// exceptions. Nothing Bulwark reads is fractional, and reading a double
// into an integer is undefined behaviour when it does not fit (nlohmann's
// get<int64_t>() of 1e69, found by fuzz_records; get<uint64_t>() of -1.0):
// so every float becomes the integer it truncates to (as get<int64_t>()
// read a float in range before), and a document holding one outside
// int64's range, NaN or infinity, is refused. The check runs in the
// parser's callback, without recursion, however deep the document.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

namespace bulwark {

// The document, or a discarded value (is_discarded()) when `text` is not
// JSON or holds a number out of every integer's range.
inline nlohmann::json parse_json_input(std::string_view text) {
  // 2^63: the first double above int64's range (-2^63 is within it).
  constexpr double kLimit = 9223372036854775808.0;
  bool out_of_range = false;
  nlohmann::json j = nlohmann::json::parse(
      text,
      [&out_of_range](int, nlohmann::json::parse_event_t event, nlohmann::json& value) {
        if (event == nlohmann::json::parse_event_t::value && value.is_number_float()) {
          const double v = value.get<double>();
          if (v >= -kLimit && v < kLimit) {
            value = static_cast<int64_t>(v);
          } else {
            out_of_range = true;
          }
        }
        return true;
      },
      false);
  if (out_of_range) return nlohmann::json(nlohmann::json::value_t::discarded);
  return j;
}

}  // namespace bulwark
