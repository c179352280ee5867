// Client and server bytes are untrusted: any input must be parsed as a
// stream of messages the way the proxy does it (head, body via BodyFramer,
// next head) without a crash, undefined behaviour, leak or hang. Beyond not
// crashing, it checks the properties the proxy relies on:
// - a complete head stays within its limits and its views within the head;
// - no prefix of an accepted head is complete or refused (re-parsing a
//   growing buffer never rejects what the whole would accept);
// - the framer gives the same answer whether fed at once or byte by byte;
// - a rewritten head parses again to the same message and framing.
// The first input byte picks options (limits, HEAD, client keep-alive and
// version, forwarding fields); the rest is the stream. Seeds in
// corpus/http/ start with such a byte.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http_parser.h"

namespace {

using namespace bulwark::proxy;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Bounds the quadratic prefix check so that big inputs stay fast.
constexpr std::size_t kPrefixCheckBytesMax = 512;
constexpr int kMessagesMax = 64;

template <class Head, class Parse>
void check_prefixes_incomplete(std::string_view head, Parse parse) {
  const std::size_t step = head.size() <= kPrefixCheckBytesMax ? 1 : head.size() / 64;
  for (std::size_t n = 0; n < head.size(); n += step) {
    Head partial;
    HttpError error;
    check(parse(head.substr(0, n), partial, error) == ParseStatus::kIncomplete);
  }
}

template <class Head>
void check_head(const Head& head, std::string_view rest, const HttpLimits& limits) {
  check(head.head_bytes > 0 && head.head_bytes <= rest.size());
  check(head.head_bytes <= limits.head_bytes_max);
  check(head.headers.size() <= limits.headers_max);
  const std::string_view bytes = rest.substr(0, head.head_bytes);
  for (const HttpHeader& h : head.headers) {
    check(!h.name.empty() && inside(h.name, bytes) && inside(h.value, bytes));
  }
}

// Frames the body at the front of `rest` at once and byte by byte; both must
// agree. Returns the body bytes, or npos when the stream cannot go on.
std::size_t frame_body(BodyKind kind, uint64_t length, std::size_t trailer_bytes_max,
                       std::string_view rest) {
  BodyFramer whole;
  whole.reset(kind, length, trailer_bytes_max);
  check(whole.kind() == kind);
  const std::size_t used = whole.feed(rest.data(), rest.size());
  check(used <= rest.size());
  check(!(whole.done() && whole.failed()));
  BodyFramer bytes;
  bytes.reset(kind, length, trailer_bytes_max);
  std::size_t used_bytes = 0;
  while (used_bytes < rest.size()) {
    const std::size_t took = bytes.feed(rest.data() + used_bytes, 1);
    check(took <= 1);
    if (took == 0) {
      check(bytes.done() || bytes.failed());
      break;
    }
    used_bytes += took;
  }
  check(used_bytes == used && bytes.done() == whole.done() && bytes.failed() == whole.failed());
  if (whole.done()) check(whole.feed(rest.data(), rest.size()) == 0);
  return whole.done() ? used : std::string_view::npos;
}

void fuzz_requests(std::string_view stream, const HttpLimits& limits, uint8_t flags) {
  const ForwardOptions options{.client_ip = (flags & 8) != 0 ? "2001:db8::7" : "192.0.2.7",
                               .x_forwarded_for = (flags & 16) != 0,
                               .forwarded = (flags & 32) != 0};
  const auto parse = [&limits](std::string_view data, RequestHead& head, HttpError& error) {
    return parse_request_head(data, limits, head, error);
  };
  std::string_view rest = stream;
  RequestHead head;
  HttpError error;
  std::string out;
  for (int message = 0; message < kMessagesMax && !rest.empty(); ++message) {
    const ParseStatus status = parse(rest, head, error);
    if (status == ParseStatus::kIncomplete) {
      check(rest.size() < limits.head_bytes_max);
      return;
    }
    if (status == ParseStatus::kError) {
      check(error.status == 400 || error.status == 431 || error.status == 501 ||
            error.status == 505);
      check(!error.reason.empty());
      const std::string reply = make_error_response(error.status);
      ResponseHead response;
      check(parse_response_head(reply, {}, false, response, error) == ParseStatus::kComplete);
      check(response.status == error.status && !response.keep_alive);
      return;
    }
    check_head(head, rest, limits);
    check(head.body != BodyKind::kUntilClose && !head.method.empty() && !head.target.empty());
    check(head.version_minor == 0 || head.version_minor == 1);
    check_prefixes_incomplete<RequestHead>(rest.substr(0, head.head_bytes), parse);

    out.clear();
    append_request_head(head, options, out);
    RequestHead again;
    const HttpLimits roomy{.head_bytes_max = out.size(), .headers_max = head.headers.size() + 3};
    check(parse_request_head(out, roomy, again, error) == ParseStatus::kComplete);
    check(again.head_bytes == out.size() && again.method == head.method &&
          again.target == head.target && again.version_minor == head.version_minor &&
          again.host == head.host && again.body == head.body &&
          again.content_length == head.content_length && again.keep_alive);

    rest.remove_prefix(head.head_bytes);
    const std::size_t body = frame_body(head.body, head.content_length, 64 + flags, rest);
    if (body == std::string_view::npos) return;
    rest.remove_prefix(body);
  }
}

void fuzz_responses(std::string_view stream, const HttpLimits& limits, uint8_t flags) {
  const bool request_is_head = (flags & 2) != 0;
  const bool client_keep_alive = (flags & 4) != 0;
  const int client_version_minor = (flags & 8) != 0 ? 0 : 1;
  const auto parse = [&](std::string_view data, ResponseHead& head, HttpError& error) {
    return parse_response_head(data, limits, request_is_head, head, error);
  };
  std::string_view rest = stream;
  ResponseHead head;
  HttpError error;
  std::string out;
  for (int message = 0; message < kMessagesMax && !rest.empty(); ++message) {
    const ParseStatus status = parse(rest, head, error);
    if (status == ParseStatus::kIncomplete) {
      check(rest.size() < limits.head_bytes_max);
      return;
    }
    if (status == ParseStatus::kError) {
      check(error.status == 502 && !error.reason.empty());
      return;
    }
    check_head(head, rest, limits);
    check(head.status >= 100 && head.status <= 599 && inside(head.reason, rest));
    check(head.interim == (head.status < 200 && head.status != 101));
    check(!(head.body == BodyKind::kUntilClose && head.keep_alive));
    check_prefixes_incomplete<ResponseHead>(rest.substr(0, head.head_bytes), parse);

    out.clear();
    append_response_head(head, client_keep_alive, client_version_minor, out);
    ResponseHead again;
    const HttpLimits roomy{.head_bytes_max = out.size() + 1,
                           .headers_max = head.headers.size() + 1};
    check(parse_response_head(out, roomy, request_is_head, again, error) == ParseStatus::kComplete);
    check(again.head_bytes == out.size() && again.status == head.status &&
          again.reason == head.reason && again.body == head.body);
    // Content-Length survives unless Transfer-Encoding overrides it.
    if (head.body == BodyKind::kLength) check(again.content_length == head.content_length);
    if (!client_keep_alive) check(!again.keep_alive);

    rest.remove_prefix(head.head_bytes);
    const std::size_t body = frame_body(head.body, head.content_length, 64 + flags, rest);
    if (body == std::string_view::npos) return;
    rest.remove_prefix(body);
  }
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  // Small limits make the limit paths reachable with short inputs.
  const HttpLimits limits =
      (flags & 1) != 0 ? HttpLimits{.head_bytes_max = 200, .headers_max = 4} : HttpLimits{};
  fuzz_requests(stream, limits, flags);
  fuzz_responses(stream, limits, flags);
  return 0;
}
