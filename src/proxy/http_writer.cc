// Writing the heads bulwark-proxy forwards (RFC 9110 7.6.1 hop-by-hop
// fields, RFC 7239 Forwarded, RFC 9112 framing fields) and its own error
// responses. See http_parser.h for the contract.
#include <algorithm>
#include <array>

#include "proxy/http_parser.h"
#include "proxy/http_text.h"

namespace bulwark::proxy {

using namespace http_text;  // NOLINT(google-build-using-namespace): internal helpers

namespace {

// The options of the Connection fields: names of the fields that are
// hop-by-hop for this message only (RFC 9110 7.6.1).
struct ConnectionOptions {
  std::array<std::string_view, kConnectionOptionsMax> names;
  std::size_t count = 0;
};

ConnectionOptions connection_options(const std::vector<HttpHeader>& headers) {
  ConnectionOptions options;
  for (const HttpHeader& h : headers) {
    if (!iequals(h.name, "connection")) continue;
    ListReader list(h.value);
    std::string_view element;
    while (list.next(element) && options.count < options.names.size()) {
      // Naming a framing field or Host must not make us drop it: the server
      // would then frame the body differently than we did.
      if (element.empty() || iequals(element, "content-length") ||
          iequals(element, "transfer-encoding") || iequals(element, "host")) {
        continue;
      }
      options.names[options.count++] = element;
    }
  }
  return options;
}

bool is_hop_by_hop(std::string_view name, const ConnectionOptions& options) {
  if (iequals(name, "connection") || iequals(name, "keep-alive") ||
      iequals(name, "proxy-connection") || iequals(name, "upgrade")) {
    return true;
  }
  for (std::size_t i = 0; i < options.count; ++i) {
    if (iequals_mixed(name, options.names[i])) return true;
  }
  return false;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// Content-Length, sent once with its first value: the parser accepted a
// list or repetition only if all values are equal, and RFC 9112 6.3 asks an
// intermediary to forward a single value rather than the list.
void append_content_length(std::string& out, const HttpHeader& field, bool& written) {
  if (written) return;
  written = true;
  std::string_view first;
  ListReader(field.value).next(first);
  append_field(out, field.name, first);
}

// Starts a forwarding field with the values of every field of that name the
// client sent, merged into one list (RFC 9110 5.3); the caller appends this
// hop's element and the CRLF. Fields the client declared hop-by-hop are not
// carried over.
void append_forwarding_start(std::string& out, const std::vector<HttpHeader>& headers,
                             const ConnectionOptions& hop, std::string_view name) {
  out.append(name);
  out.append(": ");
  for (const HttpHeader& h : headers) {
    if (!iequals_mixed(h.name, name) || h.value.empty() || is_hop_by_hop(h.name, hop)) continue;
    out.append(h.value);
    out.append(", ");
  }
}

}  // namespace

void append_request_head(const RequestHead& head, const ForwardOptions& options, std::string& out) {
  out.reserve(out.size() + head.head_bytes + options.client_ip.size() * 2 + 128);
  out.append(head.method);
  out.push_back(' ');
  out.append(head.target);
  out.append(head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  const ConnectionOptions hop = connection_options(head.headers);
  bool content_length_written = false;
  for (const HttpHeader& h : head.headers) {
    if (is_hop_by_hop(h.name, hop)) continue;
    // Re-emitted below with the client appended.
    if (options.x_forwarded_for && iequals(h.name, "x-forwarded-for")) continue;
    if (options.forwarded && iequals(h.name, "forwarded")) continue;
    if (iequals(h.name, "content-length")) {
      append_content_length(out, h, content_length_written);
      continue;
    }
    append_field(out, h.name, h.value);
  }
  const std::string_view ip = options.client_ip.empty() ? "unknown" : options.client_ip;
  if (options.x_forwarded_for) {
    append_forwarding_start(out, head.headers, hop, "X-Forwarded-For");
    out.append(ip);
    out.append("\r\n");
  }
  if (options.forwarded) {
    append_forwarding_start(out, head.headers, hop, "Forwarded");
    // RFC 7239 6: an IPv6 node is quoted and bracketed.
    const bool v6 = ip.find(':') != std::string_view::npos;
    out.append(v6 ? "for=\"[" : "for=");
    out.append(ip);
    out.append(v6 ? "]\";proto=http\r\n" : ";proto=http\r\n");
  }
  if (head.version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  } else if (!head.upgrade.empty()) {
    out.append("Connection: upgrade\r\n");
    append_field(out, "Upgrade", head.upgrade);
  }
  out.append("\r\n");
}

void append_switching_protocols_head(const ResponseHead& head, std::string& out) {
  out.append("HTTP/1.1 101 ");
  out.append(head.reason);
  out.append("\r\n");
  const ConnectionOptions hop = connection_options(head.headers);
  for (const HttpHeader& h : head.headers) {
    if (iequals(h.name, "upgrade") || !is_hop_by_hop(h.name, hop))
      append_field(out, h.name, h.value);
  }
  out.append("Connection: upgrade\r\n\r\n");
}

void append_response_head(const ResponseHead& head, bool client_keep_alive,
                          int client_version_minor, std::string& out) {
  out.reserve(out.size() + head.head_bytes + 32);
  // RFC 9110 2.5: an intermediary sends its own version, whatever the
  // server spoke.
  out.append("HTTP/1.1 ");
  const int status = std::clamp(head.status, 100, 999);
  const std::array<char, 3> digits = {static_cast<char>('0' + status / 100),
                                      static_cast<char>('0' + status / 10 % 10),
                                      static_cast<char>('0' + status % 10)};
  out.append(digits.data(), digits.size());
  out.push_back(' ');
  out.append(head.reason);
  out.append("\r\n");
  const ConnectionOptions hop = connection_options(head.headers);
  const bool has_transfer_encoding =
      std::any_of(head.headers.begin(), head.headers.end(),
                  [](const HttpHeader& h) { return iequals(h.name, "transfer-encoding"); });
  bool content_length_written = false;
  for (const HttpHeader& h : head.headers) {
    if (is_hop_by_hop(h.name, hop)) continue;
    if (iequals(h.name, "content-length")) {
      // RFC 9112 6.3: with both, Transfer-Encoding frames the body and an
      // intermediary must remove Content-Length before forwarding.
      if (!has_transfer_encoding) append_content_length(out, h, content_length_written);
      continue;
    }
    append_field(out, h.name, h.value);
  }
  if (!client_keep_alive) {
    out.append("Connection: close\r\n");
  } else if (client_version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

std::string_view status_reason(int status) {
  static constexpr std::pair<int, std::string_view> kReasons[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {204, "No Content"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {411, "Length Required"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {417, "Expectation Failed"},
      {421, "Misdirected Request"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
  };
  for (const auto& [code, reason] : kReasons) {
    if (code == status) return reason;
  }
  return "Error";
}

std::string make_error_response(int status) {
  // Statuses outside 400..599 would need other framing rules (1xx, 204, 304
  // have no body), so they are reported as the generic server error.
  if (status < 400 || status > 599) status = 500;
  const std::string code = std::to_string(status);
  std::string body = code;
  body.push_back(' ');
  body.append(status_reason(status));
  body.push_back('\n');
  std::string out = "HTTP/1.1 " + code + " ";
  out.append(status_reason(status));
  out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  out.append(std::to_string(body.size()));
  out.append("\r\nConnection: close\r\n\r\n");
  out.append(body);
  return out;
}

}  // namespace bulwark::proxy
