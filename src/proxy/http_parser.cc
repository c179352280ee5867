// HTTP/1.1 heads and body framing, following RFC 9112 and the field rules of
// RFC 9110. See http_parser.h for the contract; the comments here explain the
// choices that keep two HTTP implementations from disagreeing on framing.
// The heads the proxy sends are written in http_writer.cc.
#include "proxy/http_parser.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "proxy/http_text.h"

namespace bulwark::proxy {

using namespace http_text;  // NOLINT(google-build-using-namespace): internal helpers

namespace {

// Robustness allowance of RFC 9112 2.2 for clients that send a CRLF after a
// POST body; a longer run of empty lines is not a client we need to serve.
constexpr std::size_t kLeadingEmptyLinesMax = 8;
// 19 decimal digits always fit in uint64_t; no real body needs more.
constexpr std::size_t kContentLengthDigitsMax = 19;
// 16 hex digits fill exactly 64 bits.
constexpr std::size_t kChunkSizeDigitsMax = 16;
// Chunk extensions are unused in practice; a bound keeps a size line short.
constexpr std::size_t kChunkExtensionBytesMax = 4096;

constexpr uint8_t kTchar = 1;       // RFC 9110 5.6.2 token characters
constexpr uint8_t kFieldValue = 2;  // HTAB, SP, VCHAR, obs-text (RFC 9110 5.5)
constexpr uint8_t kHostChar = 4;    // uri-host ":" port characters (RFC 3986 3.2.2)
constexpr uint8_t kHexDigit = 8;

constexpr std::array<uint8_t, 256> make_char_classes() {
  std::array<uint8_t, 256> classes{};
  for (int c = 0; c < 256; ++c) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    uint8_t bits = 0;
    if (alnum ||
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos) {
      bits |= kTchar;
    }
    if (c == '\t' || (c >= 0x20 && c != 0x7F)) bits |= kFieldValue;
    if (alnum || std::string_view("-._~%!$&'()*+,;=:[]").find(static_cast<char>(c)) !=
                     std::string_view::npos) {
      bits |= kHostChar;
    }
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
      bits |= kHexDigit;
    }
    classes[static_cast<std::size_t>(c)] = bits;
  }
  return classes;
}

constexpr std::array<uint8_t, 256> kCharClasses = make_char_classes();

bool has_class(char c, uint8_t cls) {
  return (kCharClasses[static_cast<unsigned char>(c)] & cls) != 0;
}

// Word-at-a-time helpers: each is exact as a yes/no answer for the 8 bytes of
// `w`, which lets the common all-clean case skip the per-byte table lookups.
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;
uint64_t any_byte_below(uint64_t w, uint8_t n) { return (w - kOnes * n) & ~w & kHighs; }
uint64_t any_byte_equal(uint64_t w, uint8_t n) {
  const uint64_t x = w ^ (kOnes * n);
  return (x - kOnes) & ~x & kHighs;
}
uint64_t load_word(const char* p) {
  uint64_t w = 0;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

// True when every byte may appear in a field value (RFC 9110 5.5): no CTL
// other than HTAB, no DEL. NUL, CR and LF are what smuggling relies on.
bool is_field_value(std::string_view s) {
  const char* p = s.data();
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    const uint64_t w = load_word(p + i);
    if ((any_byte_below(w, 0x20) | any_byte_equal(w, 0x7F)) == 0) continue;
    for (std::size_t j = i; j < i + 8; ++j) {
      if (!has_class(p[j], kFieldValue)) return false;
    }
  }
  for (; i < s.size(); ++i) {
    if (!has_class(p[i], kFieldValue)) return false;
  }
  return true;
}

// True when every byte is visible ASCII (0x21-0x7E), as a request-target must be.
bool is_visible_ascii(std::string_view s) {
  const char* p = s.data();
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    const uint64_t w = load_word(p + i);
    if ((any_byte_below(w, 0x21) | any_byte_equal(w, 0x7F) | (w & kHighs)) != 0) return false;
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

ParseStatus fail(HttpError& error, int status, const char* reason) {
  error.status = status;
  error.reason = reason;
  return ParseStatus::kError;
}

// Where the lines of a head are, found by a cheap scan before any parsing.
struct HeadScan {
  std::size_t start = 0;                                // first byte of the start line
  std::size_t start_line_end = std::string_view::npos;  // CR ending the start line, if seen
  std::size_t end = 0;                                  // one past the LF of the empty line
  std::size_t field_lines = 0;
};

// Finds the empty line ending the head among the first `limit` bytes, one
// memchr per line. Every LF must follow a CR; a bare CR is caught later by
// the character checks, since CR is valid in no part of a line.
ParseStatus scan_head(std::string_view data, std::size_t limit, HeadScan& scan, HttpError& error) {
  std::size_t line = scan.start;
  while (line < limit) {
    const void* found = std::memchr(data.data() + line, '\n', limit - line);
    if (found == nullptr) break;
    const auto lf = static_cast<std::size_t>(static_cast<const char*>(found) - data.data());
    if (lf == line || data[lf - 1] != '\r') return fail(error, 400, "bare LF in head");
    if (lf == line + 1 && line != scan.start) {
      scan.end = lf + 1;
      return ParseStatus::kComplete;
    }
    if (line == scan.start) {
      scan.start_line_end = lf - 1;
    } else {
      ++scan.field_lines;
    }
    line = lf + 1;
  }
  return ParseStatus::kIncomplete;
}

// Skips the empty lines RFC 9112 2.2 lets a server ignore before a request
// line. Sets `start` to the first other byte; kIncomplete if the data ends
// inside the run.
ParseStatus skip_leading_empty_lines(std::string_view data, std::size_t& start, HttpError& error) {
  std::size_t lines = 0;
  start = 0;
  while (start < data.size()) {
    if (data[start] == '\n') return fail(error, 400, "bare LF in head");
    if (data[start] != '\r') return ParseStatus::kComplete;
    if (start + 1 == data.size()) return ParseStatus::kIncomplete;
    if (data[start + 1] != '\n') return fail(error, 400, "bare CR in head");
    if (++lines > kLeadingEmptyLinesMax) return fail(error, 400, "too many empty lines");
    start += 2;
  }
  return ParseStatus::kIncomplete;
}

// Parses "HTTP/d.d"; kError with 505 for a well-formed version we do not speak.
ParseStatus parse_version(std::string_view text, int& minor, HttpError& error) {
  if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || text[6] != '.' ||
      !(text[5] >= '0' && text[5] <= '9') || !(text[7] >= '0' && text[7] <= '9')) {
    return fail(error, 400, "malformed HTTP version");
  }
  if (text[5] != '1' || (text[7] != '0' && text[7] != '1')) {
    return fail(error, 505, "unsupported HTTP version");
  }
  minor = text[7] - '0';
  return ParseStatus::kComplete;
}

// request-line = method SP request-target SP HTTP-version (RFC 9112 3).
ParseStatus parse_request_line(std::string_view line, RequestHead& out, HttpError& error) {
  std::size_t method_end = 0;
  while (method_end < line.size() && has_class(line[method_end], kTchar)) ++method_end;
  if (method_end == 0 || method_end == line.size() || line[method_end] != ' ') {
    return fail(error, 400, "malformed method");
  }
  // The version is the last 8 bytes, so the target is whatever lies between.
  constexpr std::size_t kVersionBytes = 8;
  if (line.size() < method_end + 2 + kVersionBytes ||
      line[line.size() - kVersionBytes - 1] != ' ') {
    return fail(error, 400, "malformed request line");
  }
  if (parse_version(line.substr(line.size() - kVersionBytes), out.version_minor, error) !=
      ParseStatus::kComplete) {
    return ParseStatus::kError;
  }
  out.method = line.substr(0, method_end);
  out.target = line.substr(method_end + 1, line.size() - kVersionBytes - 2 - method_end);
  if (out.target.empty()) return fail(error, 400, "empty request target");
  if (!is_visible_ascii(out.target)) return fail(error, 400, "invalid request target");
  if (out.method == "CONNECT") return fail(error, 501, "CONNECT not supported");
  return ParseStatus::kComplete;
}

// status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 4),
// also accepting a missing SP before an empty reason.
ParseStatus parse_status_line(std::string_view line, ResponseHead& out, HttpError& error) {
  if (line.size() < 12 || line[8] != ' ') return fail(error, 502, "malformed status line");
  if (parse_version(line.substr(0, 8), out.version_minor, error) != ParseStatus::kComplete) {
    return ParseStatus::kError;
  }
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail(error, 502, "malformed status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599) return fail(error, 502, "status code out of range");
  if (line.size() > 12 && line[12] != ' ') return fail(error, 502, "malformed status line");
  out.status = status;
  out.reason = line.size() > 13 ? line.substr(13) : std::string_view();
  if (!is_field_value(out.reason)) return fail(error, 502, "invalid reason phrase");
  return ParseStatus::kComplete;
}

// Returns the index of the first byte in [i, end) that may not appear in a
// field value, or `end`. Clean 8-byte words are skipped whole.
std::size_t find_value_end(const char* p, std::size_t i, std::size_t end) {
  while (true) {
    while (i + 8 <= end) {
      const uint64_t w = load_word(p + i);
      if ((any_byte_below(w, 0x20) | any_byte_equal(w, 0x7F)) != 0) break;
      i += 8;
    }
    // A flagged word (or the tail) byte by byte; HTAB lets the scan go on.
    const std::size_t stop = std::min(i + 8, end);
    for (; i < stop; ++i) {
      if (!has_class(p[i], kFieldValue)) return i;
    }
    if (i == end) return end;
  }
}

// field-line = field-name ":" OWS field-value OWS (RFC 9112 5), starting at
// data[line]. One pass validates the line and finds its end: `next` is set to
// the first byte after its CRLF. scan_head proved that a CRLF ends the line
// before `head_end`, so the scans below stop in bounds.
ParseStatus parse_field_line(std::string_view data, std::size_t line, std::size_t head_end,
                             std::size_t& next, HttpHeader& field, HttpError& error) {
  const char* p = data.data();
  std::size_t i = line;
  while (has_class(p[i], kTchar)) ++i;
  if (p[i] != ':') {
    if (i == line && is_ows(p[i])) return fail(error, 400, "obsolete line folding");
    if (is_ows(p[i])) return fail(error, 400, "whitespace before colon");
    return fail(error, 400, "invalid header name");
  }
  if (i == line) return fail(error, 400, "empty header name");
  field.name = data.substr(line, i - line);
  ++i;
  while (is_ows(p[i])) ++i;
  const std::size_t value_start = i;
  i = find_value_end(p, i, head_end);
  if (p[i] != '\r') return fail(error, 400, "invalid header value");
  if (p[i + 1] != '\n') return fail(error, 400, "bare CR in head");
  next = i + 2;
  while (i > value_start && is_ows(p[i - 1])) --i;
  field.value = data.substr(value_start, i - value_start);
  return ParseStatus::kComplete;
}

// What the fields of a head say about framing and the connection, gathered
// in one pass and judged once every field is known.
struct FieldFacts {
  std::size_t host_count = 0;
  std::string_view host;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  std::size_t codings = 0;          // transfer codings over all Transfer-Encoding fields
  std::size_t chunked_codings = 0;  // how many of them are "chunked"
  bool last_coding_chunked = false;
  bool empty_coding = false;
  std::size_t connection_options = 0;
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool connection_upgrade = false;
  std::string_view upgrade;
  bool expect_continue = false;
};

// Content-Length = 1*DIGIT, possibly as a list of equal values (RFC 9112 6.3).
ParseStatus note_content_length(std::string_view value, FieldFacts& facts, HttpError& error) {
  ListReader list(value);
  std::string_view element;
  while (list.next(element)) {
    if (element.empty() || element.size() > kContentLengthDigitsMax) {
      return fail(error, 400, "invalid Content-Length");
    }
    uint64_t length = 0;
    for (char c : element) {
      if (c < '0' || c > '9') return fail(error, 400, "invalid Content-Length");
      length = length * 10 + static_cast<uint64_t>(c - '0');
    }
    if (facts.has_content_length && length != facts.content_length) {
      return fail(error, 400, "conflicting Content-Length");
    }
    facts.has_content_length = true;
    facts.content_length = length;
  }
  return ParseStatus::kComplete;
}

ParseStatus note_field(const HttpHeader& field, FieldFacts& facts, HttpError& error) {
  std::string_view element;
  switch (field.name.size()) {
    case 4:
      if (iequals(field.name, "host")) {
        ++facts.host_count;
        facts.host = field.value;
      }
      break;
    case 6:
      if (iequals(field.name, "expect")) {
        ListReader list(field.value);
        while (list.next(element)) facts.expect_continue |= iequals(element, "100-continue");
      }
      break;
    case 10:
      if (iequals(field.name, "connection")) {
        ListReader list(field.value);
        while (list.next(element)) {
          if (element.empty()) continue;
          if (++facts.connection_options > kConnectionOptionsMax) {
            return fail(error, 400, "too many Connection options");
          }
          facts.connection_close |= iequals(element, "close");
          facts.connection_keep_alive |= iequals(element, "keep-alive");
          facts.connection_upgrade |= iequals(element, "upgrade");
        }
      }
      break;
    case 7:
      if (iequals(field.name, "upgrade")) facts.upgrade = field.value;
      break;
    case 14:
      if (iequals(field.name, "content-length")) {
        return note_content_length(field.value, facts, error);
      }
      break;
    case 17:
      if (iequals(field.name, "transfer-encoding")) {
        facts.has_transfer_encoding = true;
        ListReader list(field.value);
        while (list.next(element)) {
          ++facts.codings;
          facts.empty_coding |= element.empty();
          facts.last_coding_chunked = iequals(element, "chunked");
          facts.chunked_codings += facts.last_coding_chunked ? 1 : 0;
        }
      }
      break;
    default:
      break;
  }
  return ParseStatus::kComplete;
}

// Parses the field lines of a scanned head into `headers` and `facts`.
ParseStatus parse_fields(std::string_view data, const HeadScan& scan, const HttpLimits& limits,
                         std::vector<HttpHeader>& headers, FieldFacts& facts, HttpError& error) {
  if (scan.field_lines > limits.headers_max) return fail(error, 431, "too many header fields");
  headers.reserve(scan.field_lines);
  std::size_t line = scan.start_line_end + 2;
  const std::size_t fields_end = scan.end - 2;  // the CRLF of the empty line
  while (line < fields_end) {
    HttpHeader field;
    if (parse_field_line(data, line, scan.end, line, field, error) != ParseStatus::kComplete ||
        note_field(field, facts, error) != ParseStatus::kComplete) {
      return ParseStatus::kError;
    }
    headers.push_back(field);
  }
  return ParseStatus::kComplete;
}

// Rejects a partial request as soon as its first bytes cannot start a valid
// request line, so a TLS handshake or other garbage is refused at once
// instead of after the head limit or a timeout.
ParseStatus check_partial_request(std::string_view data, const HeadScan& scan, RequestHead& out,
                                  HttpError& error) {
  if (scan.start_line_end != std::string_view::npos) {
    return parse_request_line(data.substr(scan.start, scan.start_line_end - scan.start), out,
                              error);
  }
  for (std::size_t i = scan.start; i < data.size() && data[i] != ' '; ++i) {
    if (!has_class(data[i], kTchar)) return fail(error, 400, "malformed method");
  }
  return ParseStatus::kIncomplete;
}

// Transfer-Encoding and Content-Length rules for requests (RFC 9112 6.1-6.3).
ParseStatus frame_request(const FieldFacts& facts, RequestHead& out, HttpError& error) {
  if (facts.has_transfer_encoding) {
    if (out.version_minor == 0) return fail(error, 400, "Transfer-Encoding in HTTP/1.0");
    if (facts.has_content_length) return fail(error, 400, "Transfer-Encoding with Content-Length");
    if (facts.empty_coding || facts.chunked_codings > 1 ||
        (facts.chunked_codings == 1 && !facts.last_coding_chunked)) {
      return fail(error, 400, "chunked is not the only final coding");
    }
    if (facts.codings != 1 || facts.chunked_codings != 1) {
      return fail(error, 501, "unsupported transfer coding");
    }
    out.body = BodyKind::kChunked;
  } else if (facts.has_content_length) {
    out.body = BodyKind::kLength;
  }
  return ParseStatus::kComplete;
}

bool keep_alive_for(int version_minor, const FieldFacts& facts) {
  if (facts.connection_close) return false;
  return version_minor == 1 || facts.connection_keep_alive;
}

bool is_host(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return has_class(c, kHostChar); });
}

// RFC 9112 3.2: exactly one valid Host in HTTP/1.1, at most one in 1.0. The
// target must be origin-form, asterisk-form for OPTIONS, or http(s)
// absolute-form. A server serves an absolute-form target by its authority
// and ignores Host (3.2.2) while the proxy routes by Host, so the two must
// agree, or a client could be routed by one name and served by another.
ParseStatus check_host_and_target(const FieldFacts& facts, RequestHead& out, HttpError& error) {
  if (facts.host_count > 1) return fail(error, 400, "more than one Host");
  if (facts.host_count == 0 && out.version_minor == 1) return fail(error, 400, "missing Host");
  if (!is_host(facts.host)) return fail(error, 400, "invalid Host");
  out.host = facts.host;
  const std::string_view target = out.target;
  if (target[0] == '/') return ParseStatus::kComplete;
  if (target == "*") {
    if (out.method == "OPTIONS") return ParseStatus::kComplete;
    return fail(error, 400, "asterisk target outside OPTIONS");
  }
  std::size_t scheme = 0;
  if (target.size() > 7 && iequals(target.substr(0, 7), "http://")) {
    scheme = 7;
  } else if (target.size() > 8 && iequals(target.substr(0, 8), "https://")) {
    scheme = 8;
  } else {
    return fail(error, 400, "invalid request target form");
  }
  const std::string_view rest = target.substr(scheme);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || !is_host(authority)) return fail(error, 400, "invalid target authority");
  if (facts.host_count == 1 && !iequals_mixed(authority, facts.host)) {
    return fail(error, 400, "Host differs from target authority");
  }
  out.host = authority;
  return ParseStatus::kComplete;
}

template <class Head>
void reset_head(Head& head) {
  std::vector<HttpHeader> headers = std::move(head.headers);
  headers.clear();
  head = Head{};
  head.headers = std::move(headers);
}

}  // namespace

ParseStatus parse_request_head(std::string_view data, const HttpLimits& limits, RequestHead& out,
                               HttpError& error) {
  reset_head(out);
  HeadScan scan;
  ParseStatus status = skip_leading_empty_lines(data, scan.start, error);
  if (status == ParseStatus::kError) return status;
  const std::size_t limit = std::min(data.size(), limits.head_bytes_max);
  // kIncomplete from the skip means the data ends inside the empty lines.
  const bool in_empty_lines = status == ParseStatus::kIncomplete;
  if (!in_empty_lines) status = scan_head(data, limit, scan, error);
  if (status == ParseStatus::kError) return status;
  if (status == ParseStatus::kIncomplete) {
    if (!in_empty_lines && check_partial_request(data, scan, out, error) == ParseStatus::kError) {
      return ParseStatus::kError;
    }
    if (data.size() >= limits.head_bytes_max) return fail(error, 431, "request head too large");
    return ParseStatus::kIncomplete;
  }
  if (parse_request_line(data.substr(scan.start, scan.start_line_end - scan.start), out, error) !=
      ParseStatus::kComplete) {
    return ParseStatus::kError;
  }
  FieldFacts facts;
  if (parse_fields(data, scan, limits, out.headers, facts, error) != ParseStatus::kComplete ||
      frame_request(facts, out, error) != ParseStatus::kComplete) {
    return ParseStatus::kError;
  }
  if (check_host_and_target(facts, out, error) != ParseStatus::kComplete) {
    return ParseStatus::kError;
  }
  out.head_bytes = scan.end;
  out.content_length = facts.content_length;
  out.keep_alive = keep_alive_for(out.version_minor, facts);
  // RFC 9110 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored.
  out.expect_continue = facts.expect_continue && out.version_minor == 1;
  // RFC 9110 7.8: Upgrade counts only when Connection names it, and only in
  // HTTP/1.1.
  if (facts.connection_upgrade && out.version_minor == 1) out.upgrade = facts.upgrade;
  const std::string_view m = out.method;
  out.is_head = m == "HEAD";
  out.idempotent =
      m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
  return ParseStatus::kComplete;
}

namespace {

ParseStatus parse_response_head_impl(std::string_view data, const HttpLimits& limits,
                                     bool request_is_head, ResponseHead& out, HttpError& error) {
  HeadScan scan;
  const std::size_t limit = std::min(data.size(), limits.head_bytes_max);
  const ParseStatus status = scan_head(data, limit, scan, error);
  if (status == ParseStatus::kError) return status;
  if (status == ParseStatus::kIncomplete) {
    // Fail early when the bytes cannot begin a status line.
    constexpr std::string_view kPrefix = "HTTP/1.";
    const std::size_t n = std::min(data.size(), kPrefix.size());
    if (data.substr(0, n) != kPrefix.substr(0, n)) return fail(error, 502, "malformed status line");
    if (scan.start_line_end != std::string_view::npos &&
        parse_status_line(data.substr(0, scan.start_line_end), out, error) == ParseStatus::kError) {
      return ParseStatus::kError;
    }
    if (data.size() >= limits.head_bytes_max) return fail(error, 502, "response head too large");
    return ParseStatus::kIncomplete;
  }
  if (parse_status_line(data.substr(0, scan.start_line_end), out, error) !=
      ParseStatus::kComplete) {
    return ParseStatus::kError;
  }
  FieldFacts facts;
  if (parse_fields(data, scan, limits, out.headers, facts, error) != ParseStatus::kComplete) {
    return ParseStatus::kError;
  }
  out.head_bytes = scan.end;
  out.content_length = facts.content_length;
  out.keep_alive = keep_alive_for(out.version_minor, facts);
  out.interim = out.status < 200 && out.status != 101;
  // RFC 9112 6.3, in its order: bodiless responses first, then
  // Transfer-Encoding over Content-Length, then read until close.
  if (request_is_head || out.status < 200 || out.status == 204 || out.status == 304) {
    out.body = BodyKind::kNone;
  } else if (facts.has_transfer_encoding) {
    // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
    if (out.version_minor == 0) return fail(error, 502, "Transfer-Encoding in HTTP/1.0");
    if (facts.empty_coding || facts.chunked_codings > 1) {
      return fail(error, 502, "malformed Transfer-Encoding");
    }
    out.body = facts.last_coding_chunked ? BodyKind::kChunked : BodyKind::kUntilClose;
    // Both headers hint at response splitting: frame by Transfer-Encoding
    // (the writer drops Content-Length) and never reuse the connection.
    if (facts.has_content_length) out.keep_alive = false;
  } else if (facts.has_content_length) {
    out.body = BodyKind::kLength;
  } else {
    out.body = BodyKind::kUntilClose;
  }
  if (out.body == BodyKind::kUntilClose || out.status == 101) out.keep_alive = false;
  return ParseStatus::kComplete;
}

}  // namespace

ParseStatus parse_response_head(std::string_view data, const HttpLimits& limits,
                                bool request_is_head, ResponseHead& out, HttpError& error) {
  reset_head(out);
  const ParseStatus status = parse_response_head_impl(data, limits, request_is_head, out, error);
  // The shared field rules speak in request statuses; a broken response is
  // always the server's fault, reported to the client as 502.
  if (status == ParseStatus::kError) error.status = 502;
  return status;
}

// ---------------------------------------------------------------------------
// BodyFramer

void BodyFramer::reset(BodyKind kind, uint64_t content_length, std::size_t trailer_bytes_max) {
  kind_ = kind;
  remaining_ = 0;
  count_ = 0;
  trailer_bytes_ = 0;
  trailer_bytes_max_ = trailer_bytes_max;
  switch (kind) {
    case BodyKind::kNone:
      state_ = State::kDone;
      break;
    case BodyKind::kLength:
      remaining_ = content_length;
      state_ = content_length == 0 ? State::kDone : State::kLength;
      break;
    case BodyKind::kChunked:
      state_ = State::kSize;
      break;
    case BodyKind::kUntilClose:
      state_ = State::kUntilClose;
      break;
  }
}

std::size_t BodyFramer::feed(const char* p, std::size_t n) {
  switch (state_) {
    case State::kDone:
    case State::kFailed:
      return 0;
    case State::kUntilClose:
      return n;
    case State::kLength: {
      const auto take = static_cast<std::size_t>(std::min<uint64_t>(remaining_, n));
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::kDone;
      return take;
    }
    default:
      return feed_chunked(p, n);
  }
}

std::size_t BodyFramer::feed_chunked(const char* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n && state_ != State::kDone) {
    if (state_ == State::kData) {
      // Chunk data is skipped in bulk; only the framing is looked at.
      const auto take = static_cast<std::size_t>(std::min<uint64_t>(remaining_, n - i));
      i += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::kDataCr;
      continue;
    }
    if (!step(p[i])) {
      state_ = State::kFailed;
      return i;
    }
    ++i;
  }
  return i;
}

// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 7.1).
bool BodyFramer::step(char c) {
  const bool in_trailer = state_ >= State::kTrailerStart;
  if (in_trailer && ++trailer_bytes_ > trailer_bytes_max_) return false;
  switch (state_) {
    case State::kSize:
      if (has_class(c, kHexDigit)) {
        if (++count_ > kChunkSizeDigitsMax) return false;
        const int digit = c <= '9' ? c - '0' : ascii_lower(c) - 'a' + 10;
        remaining_ = remaining_ * 16 + static_cast<uint64_t>(digit);
        return true;
      }
      if (count_ == 0) return false;
      count_ = 0;
      if (c == '\r') {
        state_ = State::kSizeLf;
      } else if (c == ';') {
        state_ = State::kExtension;
      } else if (is_ows(c)) {
        state_ = State::kSizeBws;
      } else {
        return false;
      }
      return true;
    case State::kSizeBws:
    case State::kExtension:
      if (c == '\r' && state_ == State::kExtension) {
        state_ = State::kSizeLf;
        return true;
      }
      if (++count_ > kChunkExtensionBytesMax) return false;
      if (state_ == State::kSizeBws) {
        // BWS is only allowed before the ';' of an extension (RFC 9112 7.1.1).
        if (c == ';') state_ = State::kExtension;
        return c == ';' || is_ows(c);
      }
      return has_class(c, kFieldValue);
    case State::kSizeLf:
      if (c != '\n') return false;
      state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;
      return true;
    case State::kDataCr:
      state_ = State::kDataLf;
      return c == '\r';
    case State::kDataLf:
      state_ = State::kSize;
      count_ = 0;
      return c == '\n';
    case State::kTrailerStart:
      if (c == '\r') {
        state_ = State::kFinalLf;
        return true;
      }
      state_ = State::kTrailerName;
      return has_class(c, kTchar);  // a leading SP/HTAB would be obs-fold
    case State::kTrailerName:
      if (c == ':') state_ = State::kTrailerValue;
      return c == ':' || has_class(c, kTchar);
    case State::kTrailerValue:
      if (c == '\r') state_ = State::kTrailerLf;
      return c == '\r' || has_class(c, kFieldValue);
    case State::kTrailerLf:
      state_ = State::kTrailerStart;
      return c == '\n';
    case State::kFinalLf:
      state_ = State::kDone;
      return c == '\n';
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// Writers

}  // namespace bulwark::proxy
