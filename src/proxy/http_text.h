// Text helpers shared by the HTTP parser and writer (internal to
// src/proxy): ASCII case folding, optional whitespace, and field-value lists
// (RFC 9110 5.6.1).
#pragma once

#include <cstddef>
#include <string_view>

namespace bulwark::proxy::http_text {

// Bounds the work of matching field names against Connection options
// (headers x options) and refuses lists no real client sends.
inline constexpr std::size_t kConnectionOptionsMax = 32;

inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Case-insensitive comparison against a lowercase literal.
inline bool iequals(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (ascii_lower(text[i]) != lower[i]) return false;
  }
  return true;
}

// Case-insensitive comparison of two arbitrary strings.
inline bool iequals_mixed(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Walks a comma-separated field value (RFC 9110 5.6.1), yielding each
// element with OWS trimmed. Empty elements are yielded too, so callers can
// refuse them where the grammar does not allow them; "" yields one empty one.
class ListReader {
 public:
  explicit ListReader(std::string_view list) : rest_(list) {}

  bool next(std::string_view& element) {
    if (done_) return false;
    const std::size_t comma = rest_.find(',');
    if (comma == std::string_view::npos) {
      element = trim_ows(rest_);
      done_ = true;
    } else {
      element = trim_ows(rest_.substr(0, comma));
      rest_.remove_prefix(comma + 1);
    }
    return true;
  }

 private:
  std::string_view rest_;
  bool done_ = false;
};

}  // namespace bulwark::proxy::http_text
