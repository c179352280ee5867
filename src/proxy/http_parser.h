// The HTTP/1.1 message layer of bulwark-proxy (RFC 9110, RFC 9112): strict
// parsers for request and response heads, a framer that finds where a body
// ends without copying it, and the writers of the heads the proxy forwards.
//
// Strictness is the point: this proxy fronts control-plane APIs, so anything
// that two HTTP implementations could frame differently (bare LF, obs-fold,
// Transfer-Encoding with Content-Length, conflicting lengths, whitespace
// before a colon) is refused instead of repaired, which closes the door on
// request smuggling.
//
// Every function here is pure: no I/O, no globals, callable from any thread.
// Parsers remember nothing between calls; the caller re-parses its whole
// buffer when more bytes arrive, which stays cheap because the end of the
// head is found by a memchr scan before any field is looked at.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::proxy {

struct HttpHeader {
  std::string_view name;
  std::string_view value;  // leading and trailing SP/HTAB removed
};

struct HttpLimits {
  std::size_t head_bytes_max = 16384;  // start line + fields + empty line
  std::size_t headers_max = 128;       // field lines per head
};

enum class BodyKind { kNone, kLength, kChunked, kUntilClose };

struct HttpError {
  int status = 0;      // 400 431 501 505 for requests, 502 for responses
  std::string reason;  // short human text for logs, never sent to peers
};

enum class ParseStatus { kIncomplete, kComplete, kError };

struct RequestHead {
  std::string_view method;
  std::string_view target;
  int version_minor = 1;            // HTTP/1.0 -> 0, HTTP/1.1 -> 1
  std::vector<HttpHeader> headers;  // in order, as received
  std::size_t head_bytes = 0;       // includes skipped leading empty lines and the final CRLF
  BodyKind body = BodyKind::kNone;  // never kUntilClose for requests
  uint64_t content_length = 0;      // the Content-Length value when the header is present
  bool keep_alive = true;           // version default adjusted by Connection close/keep-alive
  bool expect_continue = false;     // HTTP/1.1 with Expect: 100-continue
  bool idempotent = false;          // GET HEAD OPTIONS TRACE PUT DELETE (RFC 9110 9.2.2)
  bool is_head = false;             // method HEAD: the response has no body
  std::string_view host;            // Host value, or the authority of an absolute-form target
  std::string_view upgrade;         // HTTP/1.1 Upgrade value when Connection names "upgrade"
};

struct ResponseHead {
  int status = 0;
  int version_minor = 1;
  std::string_view reason;
  std::vector<HttpHeader> headers;
  std::size_t head_bytes = 0;
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;  // the Content-Length value when the header is present
  bool keep_alive = true;       // the server lets us reuse the connection
  bool interim = false;         // 1xx other than 101: another response head follows
};

// Parses the request head at the front of `data`, the bytes buffered so far
// starting at the first byte of the message. On kComplete the string views in
// `out` point into `data` and the body (if any) starts at data[out.head_bytes].
// Returns kIncomplete while the head is unfinished and still within the
// limits, kError with `error` filled otherwise. `out` keeps its headers
// capacity across calls; its contents are unspecified unless kComplete.
ParseStatus parse_request_head(std::string_view data, const HttpLimits& limits, RequestHead& out,
                               HttpError& error);

// Same for a response head; every error has status 502 since the proxy answers
// its client for the broken server. `request_is_head`: the request was HEAD,
// so the response carries no body whatever its fields say.
ParseStatus parse_response_head(std::string_view data, const HttpLimits& limits,
                                bool request_is_head, ResponseHead& out, HttpError& error);

// Tracks where a message body ends in a raw byte stream without copying or
// changing it: the proxy forwards chunked bodies as they are. Works for any
// split of the stream, down to one byte per feed().
class BodyFramer {
 public:
  BodyFramer() = default;  // kNone: done at once

  // Starts framing a new body. `trailer_bytes_max` bounds the trailer section
  // of a chunked body, counting from the byte after the last-chunk line up to
  // and including the final CRLF (so it must be at least 2).
  void reset(BodyKind kind, uint64_t content_length, std::size_t trailer_bytes_max = 16384);

  // Consumes the body bytes at the front of [p, p+n) and returns how many
  // belong to the body (<= n). Once done(), the rest of the input belongs to
  // the next message and feed() returns 0. On a framing error failed() turns
  // true, the return value counts the valid bytes before the bad one, and
  // the connection must be closed.
  std::size_t feed(const char* p, std::size_t n);

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  BodyKind kind() const { return kind_; }

 private:
  enum class State {
    kDone,
    kFailed,
    kLength,        // remaining_ bytes of a Content-Length body
    kUntilClose,    // everything until the peer closes
    kSize,          // hex digits of a chunk size
    kSizeBws,       // whitespace after the size, which only ';' may follow
    kExtension,     // chunk extension up to CR
    kSizeLf,        // LF ending the chunk-size line
    kData,          // remaining_ bytes of chunk data
    kDataCr,        // CR after chunk data
    kDataLf,        // LF after chunk data
    kTrailerStart,  // first byte of a trailer line, or CR of the final empty line
    kTrailerName,   // field name of a trailer line
    kTrailerValue,  // field value of a trailer line up to CR
    kTrailerLf,     // LF ending a trailer line
    kFinalLf,       // LF ending the chunked body
  };

  std::size_t feed_chunked(const char* p, std::size_t n);
  // Steps the chunked state machine over one byte outside chunk data;
  // false when the byte breaks the framing.
  bool step(char c);

  BodyKind kind_ = BodyKind::kNone;
  State state_ = State::kDone;
  uint64_t remaining_ = 0;  // body or chunk bytes still expected
  std::size_t count_ = 0;   // hex digits or extension bytes in the current size line
  std::size_t trailer_bytes_ = 0;
  std::size_t trailer_bytes_max_ = 0;
};

struct ForwardOptions {
  std::string_view client_ip;   // textual; IPv6 without brackets
  bool x_forwarded_for = true;  // append client_ip to X-Forwarded-For (added or extended)
  bool forwarded = false;       // RFC 7239: append for=IP;proto=http to Forwarded
};

// Appends the request head to send to a server: the request line as received,
// every field except the hop-by-hop ones (Connection, the fields its options
// name, Keep-Alive, Proxy-Connection, Upgrade), then the forwarding fields,
// then `Connection: keep-alive` for HTTP/1.0 requests (we always want server
// keep-alive) or, for an upgrade request, `Connection: upgrade` and its
// Upgrade field, then the empty line. Transfer-Encoding and Content-Length are
// kept since the body is forwarded raw; a repeated Content-Length is sent once.
void append_request_head(const RequestHead& head, const ForwardOptions& options, std::string& out);

// Appends the response head to send to the client: the status line as
// received, the fields minus the hop-by-hop ones, then `Connection: close` if
// !client_keep_alive, or `Connection: keep-alive` if the client keeps the
// connection and spoke HTTP/1.0 (client_version_minor == 0), then the empty
// line. Content-Length is dropped when Transfer-Encoding frames the body.
void append_response_head(const ResponseHead& head, bool client_keep_alive,
                          int client_version_minor, std::string& out);

// Appends a 101 (Switching Protocols) head for the client: the status line
// and fields as received, with Connection reduced to "upgrade" and the
// server's Upgrade field kept, since both are the point of this response.
void append_switching_protocols_head(const ResponseHead& head, std::string& out);

// The reason phrase the proxy uses for `status` ("Bad Gateway"), or "Error".
std::string_view status_reason(int status);

// A complete small response the proxy itself sends (400 431 408 502 503 504
// ...): Content-Type text/plain, Content-Length, a one-line body naming the
// status, and `Connection: close`. A status outside 400..599 gives a 500.
std::string make_error_response(int status);

}  // namespace bulwark::proxy
