// Tests of the HTTP/1.1 message layer: every refusal the strict parsers must
// make (each is a request-smuggling or robustness rule of RFC 9112), framing
// and keep-alive decisions, incremental and pipelined input, the chunked body
// framer at every split, and the heads the proxy writes.
#include "proxy/http_parser.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::proxy {
namespace {

using namespace std::string_literals;

constexpr const char* kGet = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

// Parses a head that must be accepted.
RequestHead request_ok(std::string_view data, const HttpLimits& limits = {}) {
  RequestHead head;
  HttpError error;
  const ParseStatus status = parse_request_head(data, limits, head, error);
  EXPECT_EQ(status, ParseStatus::kComplete) << error.reason << " for:\n" << data;
  return head;
}

// Parses a head that must be refused and returns the HTTP status of the refusal.
int request_error(std::string_view data, const HttpLimits& limits = {}) {
  RequestHead head;
  HttpError error;
  const ParseStatus status = parse_request_head(data, limits, head, error);
  EXPECT_EQ(status, ParseStatus::kError) << "accepted:\n" << data;
  EXPECT_FALSE(error.reason.empty());
  return status == ParseStatus::kError ? error.status : 0;
}

ResponseHead response_ok(std::string_view data, bool request_is_head = false) {
  ResponseHead head;
  HttpError error;
  const ParseStatus status = parse_response_head(data, HttpLimits{}, request_is_head, head, error);
  EXPECT_EQ(status, ParseStatus::kComplete) << error.reason << " for:\n" << data;
  return head;
}

// A request with the given field lines (each ending in CRLF) after the request line.
std::string request_with(std::string_view fields, std::string_view line = "GET / HTTP/1.1") {
  return std::string(line) + "\r\n" + std::string(fields) + "\r\n";
}

// ---------------------------------------------------------------------------
// Request heads: refusals

struct RequestErrorCase {
  const char* name;
  std::string data;
  int status;
};

class RequestErrorTest : public testing::TestWithParam<RequestErrorCase> {};

TEST_P(RequestErrorTest, IsRefused) {
  const RequestErrorCase& c = GetParam();
  EXPECT_EQ(request_error(c.data), c.status);
}

const RequestErrorCase kRequestErrors[] = {
    // Line endings: only CRLF, never a bare LF or CR.
    {"BareLfAfterRequestLine", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
    {"BareLfAfterField", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
    {"BareLfEndsHead", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
    {"LfLfEndsHead", "GET / HTTP/1.1\nHost: a\n\n", 400},
    {"BareCrInValue", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
    {"BareCrEndsRequestLine", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400},
    {"BareCrLine", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n", 400},
    {"LeadingLf", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"LeadingBareCr", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TooManyLeadingEmptyLines", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"s + kGet, 400},
    // Request line.
    {"DoubleSpaceAfterMethod", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"DoubleSpaceBeforeVersion", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TabSeparator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"LeadingSpace", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TrailingSpace", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
    {"LowercaseVersion", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
    {"MissingVersion", "GET /\r\nHost: a\r\n\r\n", 400},
    {"VersionWithoutMinor", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400},
    {"VersionLetters", "GET / HTTP/a.b\r\nHost: a\r\n\r\n", 400},
    {"VersionTwoDigits", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
    {"TargetHighByte", "GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TargetControl", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TargetDel", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TargetNul", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"s, 400},
    {"TargetSpace", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"EmptyTarget", "GET  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"MethodNotToken", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"MethodOnly", "GET\r\nHost: a\r\n\r\n", 400},
    // Field lines.
    {"SpaceBeforeColon", request_with("Host : a\r\n"), 400},
    {"TabBeforeColon", request_with("Host\t: a\r\n"), 400},
    {"ObsFold", request_with("Host: a\r\nX: a\r\n b\r\n"), 400},
    {"ObsFoldWithTab", request_with("Host: a\r\nX: a\r\n\tb\r\n"), 400},
    {"WhitespaceBeforeFirstField", request_with(" Host: a\r\n"), 400},
    {"EmptyName", request_with("Host: a\r\n: a\r\n"), 400},
    {"NoColon", request_with("Host: a\r\nX-Foo\r\n"), 400},
    {"NameNotToken", request_with("Host: a\r\nX(a): b\r\n"), 400},
    {"NulInValue", request_with("Host: a\r\nX: a\0b\r\n"s), 400},
    {"DelInValue", request_with("Host: a\r\nX: a\x7f\r\n"), 400},
    {"ControlInValue", request_with("Host: a\r\nX: a\x01\r\n"), 400},
    {"EscInLongValue",
     request_with("Host: a\r\nX: 0123456789abcdef\x1b"
                  "0123456789\r\n"),
     400},
    // Content-Length (RFC 9112 6.3).
    {"ContentLengthLetters", request_with("Host: a\r\nContent-Length: 1a\r\n"), 400},
    {"ContentLengthNegative", request_with("Host: a\r\nContent-Length: -1\r\n"), 400},
    {"ContentLengthPlus", request_with("Host: a\r\nContent-Length: +1\r\n"), 400},
    {"ContentLengthEmpty", request_with("Host: a\r\nContent-Length:\r\n"), 400},
    {"ContentLengthHex", request_with("Host: a\r\nContent-Length: 0x10\r\n"), 400},
    {"ContentLengthInnerSpace", request_with("Host: a\r\nContent-Length: 1 2\r\n"), 400},
    {"ContentLengthTwentyDigits",
     request_with("Host: a\r\nContent-Length: 18446744073709551615\r\n"), 400},
    {"ContentLengthConflictingList", request_with("Host: a\r\nContent-Length: 5, 6\r\n"), 400},
    {"ContentLengthConflictingFields",
     request_with("Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n"), 400},
    {"ContentLengthEmptyElement", request_with("Host: a\r\nContent-Length: 5,,5\r\n"), 400},
    {"ContentLengthTrailingComma", request_with("Host: a\r\nContent-Length: 5,\r\n"), 400},
    // Transfer-Encoding (RFC 9112 6.1).
    {"TransferEncodingWithContentLength",
     request_with("Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400},
    {"ContentLengthThenTransferEncoding",
     request_with("Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400},
    {"TransferEncodingInHttp10", request_with("Transfer-Encoding: chunked\r\n", "POST / HTTP/1.0"),
     400},
    {"ChunkedTwice", request_with("Host: a\r\nTransfer-Encoding: chunked, chunked\r\n"), 400},
    {"ChunkedInTwoFields",
     request_with("Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400},
    {"ChunkedNotLast", request_with("Host: a\r\nTransfer-Encoding: chunked, gzip\r\n"), 400},
    {"TransferEncodingEmpty", request_with("Host: a\r\nTransfer-Encoding:\r\n"), 400},
    {"TransferEncodingEmptyElement", request_with("Host: a\r\nTransfer-Encoding: chunked,\r\n"),
     400},
    {"GzipChunked", request_with("Host: a\r\nTransfer-Encoding: gzip, chunked\r\n"), 501},
    {"Gzip", request_with("Host: a\r\nTransfer-Encoding: gzip\r\n"), 501},
    {"Identity", request_with("Host: a\r\nTransfer-Encoding: identity\r\n"), 501},
    {"ChunkedWithParameter", request_with("Host: a\r\nTransfer-Encoding: chunked;q=1\r\n"), 501},
    {"ChunkedMisspelled", request_with("Host: a\r\nTransfer-Encoding: chunk\r\n"), 501},
    // Target forms (RFC 9112 3.2): the authority of an absolute-form target must be Host.
    {"RelativeTarget", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AsteriskForGet", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"OtherScheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteFormOtherHost", "GET http://admin.internal/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteFormUserinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteFormNoAuthority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteFormSchemeOnly", "GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    // Host (RFC 9112 3.2).
    {"MissingHost", request_with(""), 400},
    {"TwoHosts", request_with("Host: a\r\nHost: b\r\n"), 400},
    {"TwoHostsHttp10", request_with("Host: a\r\nHost: a\r\n", "GET / HTTP/1.0"), 400},
    {"HostWithSpace", request_with("Host: a b\r\n"), 400},
    {"HostWithSlash", request_with("Host: a/b\r\n"), 400},
    {"HostWithUserinfo", request_with("Host: user@a\r\n"), 400},
    // Connection.
    {"TooManyConnectionOptions",
     request_with("Host: a\r\nConnection: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,"
                  "aa,bb,cc,dd,ee,ff,gg\r\n"),
     400},
    // Methods and versions we do not serve.
    {"Connect", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501},
    {"Http20", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"Http12", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
    {"Http09", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
    {"Http30", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
};

INSTANTIATE_TEST_SUITE_P(HttpRequestHead, RequestErrorTest, testing::ValuesIn(kRequestErrors),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HttpRequestHead, LimitsGive431) {
  const HttpLimits small{.head_bytes_max = 64, .headers_max = 3};
  // No end of head within the limit.
  EXPECT_EQ(request_error("GET /" + std::string(100, 'a'), small), 431);
  EXPECT_EQ(request_error("GET /" + std::string(59, 'a'), small), 431);  // exactly 64 bytes
  // A complete head that is larger than the limit.
  EXPECT_EQ(request_error("GET /" + std::string(80, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", small),
            431);
  // Too many field lines.
  EXPECT_EQ(request_error(request_with("Host: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n"), small), 431);
}

TEST(HttpRequestHead, LimitsAreInclusive) {
  const std::string head = request_with("Host: a\r\nA: 1\r\nB: 2\r\n");
  const HttpLimits exact{.head_bytes_max = head.size(), .headers_max = 3};
  EXPECT_EQ(request_ok(head, exact).head_bytes, head.size());
  // Bytes after the head (a pipelined request) do not count against it.
  EXPECT_EQ(request_ok(head + kGet, exact).head_bytes, head.size());
}

// ---------------------------------------------------------------------------
// Request heads: what is accepted and what it means

TEST(HttpRequestHead, SimpleGet) {
  const std::string data = request_with("Host: example.com\r\nUser-Agent: t\r\n");
  const RequestHead h = request_ok(data);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.head_bytes, data.size());
  EXPECT_EQ(h.body, BodyKind::kNone);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_TRUE(h.idempotent);
  EXPECT_FALSE(h.is_head);
  EXPECT_FALSE(h.expect_continue);
  ASSERT_EQ(h.headers.size(), 2u);
  EXPECT_EQ(h.headers[0].name, "Host");
  EXPECT_EQ(h.headers[1].name, "User-Agent");
  // Views point into the input, never into a copy.
  EXPECT_GE(h.method.data(), data.data());
  EXPECT_LT(h.headers[1].value.data(), data.data() + data.size());
}

TEST(HttpRequestHead, FieldValuesAreTrimmedAndKeptInOrder) {
  const std::string data = request_with(
      "Host: a\r\nX-A:   spaced \t \r\nX-Empty:\r\nX-Blank: \t \r\nx-a: in\tner\r\n"
      "X-Obs: caf\xc3\xa9\r\n");
  const RequestHead h = request_ok(data);
  ASSERT_EQ(h.headers.size(), 6u);
  EXPECT_EQ(h.headers[1].value, "spaced");
  EXPECT_EQ(h.headers[2].value, "");
  EXPECT_EQ(h.headers[3].value, "");
  EXPECT_EQ(h.headers[4].name, "x-a");
  EXPECT_EQ(h.headers[4].value, "in\tner");
  EXPECT_EQ(h.headers[5].value, "caf\xc3\xa9");
}

TEST(HttpRequestHead, TargetsAndHosts) {
  EXPECT_EQ(request_ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").target, "*");
  EXPECT_EQ(request_ok("GET http://a/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n").target, "http://a/x?y=1");
  EXPECT_EQ(request_ok("GET HTTPS://A:8443?q HTTP/1.1\r\nHost: a:8443\r\n\r\n").host, "A:8443");
  // Without Host, an absolute-form target names the authority to route by.
  EXPECT_EQ(request_ok("GET http://b.example/x HTTP/1.0\r\n\r\n").host, "b.example");
  EXPECT_EQ(request_ok(request_with("Host: [::1]:8080\r\n")).host, "[::1]:8080");
  EXPECT_EQ(request_ok(request_with("Host: a.b-c_d~e%41:80\r\n")).host, "a.b-c_d~e%41:80");
  // RFC 9112 3.2: an empty Host is valid when the target has no authority.
  EXPECT_EQ(request_ok(request_with("Host:\r\n")).host, "");
  EXPECT_EQ(request_ok(request_with("hOsT: a\r\n")).host, "a");
  // HTTP/1.0 needs no Host.
  EXPECT_EQ(request_ok("GET / HTTP/1.0\r\n\r\n").host, "");
}

TEST(HttpRequestHead, LeadingEmptyLinesAreSkippedAndCounted) {
  const std::string data = "\r\n\r\n"s + kGet;
  const RequestHead h = request_ok(data);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.head_bytes, data.size());
  // Eight is the allowance; nine is refused (see TooManyLeadingEmptyLines).
  std::string eight;
  for (int i = 0; i < 8; ++i) eight += "\r\n";
  EXPECT_EQ(request_ok(eight + kGet).head_bytes, eight.size() + std::strlen(kGet));
}

TEST(HttpRequestHead, MethodProperties) {
  struct Case {
    const char* method;
    bool idempotent;
    bool is_head;
  };
  const Case cases[] = {
      {"GET", true, false},       {"HEAD", true, true},    {"OPTIONS", true, false},
      {"TRACE", true, false},     {"PUT", true, false},    {"DELETE", true, false},
      {"POST", false, false},     {"PATCH", false, false}, {"get", false, false},
      {"X-CUSTOM", false, false},
  };
  for (const Case& c : cases) {
    const std::string data = request_with("Host: a\r\n", std::string(c.method) + " / HTTP/1.1");
    const RequestHead h = request_ok(data);
    EXPECT_EQ(h.method, c.method);
    EXPECT_EQ(h.idempotent, c.idempotent) << c.method;
    EXPECT_EQ(h.is_head, c.is_head) << c.method;
  }
}

TEST(HttpRequestHead, KeepAlive) {
  struct Case {
    const char* line;
    const char* fields;
    bool keep_alive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1", "", true},
      {"GET / HTTP/1.1", "Connection: close\r\n", false},
      {"GET / HTTP/1.1", "Connection: Close\r\n", false},
      {"GET / HTTP/1.1", "Connection: foo, CLOSE \r\n", false},
      {"GET / HTTP/1.1", "Connection: keep-alive, close\r\n", false},
      {"GET / HTTP/1.1", "Connection: keep-alive\r\nConnection: close\r\n", false},
      {"GET / HTTP/1.1", "Connection: keep-alive\r\n", true},
      {"GET / HTTP/1.1", "Connection: closed\r\n", true},
      {"GET / HTTP/1.1", "Connection: ,, ,\r\n", true},
      {"GET / HTTP/1.0", "", false},
      {"GET / HTTP/1.0", "Connection: keep-alive\r\n", true},
      {"GET / HTTP/1.0", "Connection: Keep-Alive\r\n", true},
      {"GET / HTTP/1.0", "Connection: keep-alive, close\r\n", false},
      {"GET / HTTP/1.0", "Keep-Alive: timeout=5\r\n", false},
  };
  for (const Case& c : cases) {
    const RequestHead h = request_ok(request_with("Host: a\r\n"s + c.fields, c.line));
    EXPECT_EQ(h.keep_alive, c.keep_alive) << c.line << " / " << c.fields;
  }
}

TEST(HttpRequestHead, ExpectContinue) {
  EXPECT_TRUE(request_ok(request_with("Host: a\r\nExpect: 100-continue\r\n")).expect_continue);
  EXPECT_TRUE(request_ok(request_with("Host: a\r\nExpect: 100-Continue\r\n")).expect_continue);
  EXPECT_FALSE(request_ok(request_with("Host: a\r\nExpect: foo\r\n")).expect_continue);
  // RFC 9110 10.1.1: ignored in HTTP/1.0.
  EXPECT_FALSE(
      request_ok(request_with("Expect: 100-continue\r\n", "GET / HTTP/1.0")).expect_continue);
}

TEST(HttpRequestHead, BodyFraming) {
  struct Case {
    const char* fields;
    BodyKind body;
    uint64_t content_length;
  };
  const Case cases[] = {
      {"", BodyKind::kNone, 0},
      {"Content-Length: 0\r\n", BodyKind::kLength, 0},
      {"Content-Length: 42\r\n", BodyKind::kLength, 42},
      {"Content-Length: 007\r\n", BodyKind::kLength, 7},
      {"Content-Length: 42, 42\r\n", BodyKind::kLength, 42},
      {"Content-Length: 42\r\ncontent-length: 42\r\n", BodyKind::kLength, 42},
      {"Content-Length: 9999999999999999999\r\n", BodyKind::kLength, 9999999999999999999ULL},
      {"Transfer-Encoding: chunked\r\n", BodyKind::kChunked, 0},
      {"Transfer-Encoding: Chunked\r\n", BodyKind::kChunked, 0},
      {"Transfer-Encoding:  chunked \r\n", BodyKind::kChunked, 0},
  };
  for (const Case& c : cases) {
    const RequestHead h = request_ok(request_with("Host: a\r\n"s + c.fields, "POST / HTTP/1.1"));
    EXPECT_EQ(h.body, c.body) << c.fields;
    EXPECT_EQ(h.content_length, c.content_length) << c.fields;
  }
}

TEST(HttpRequestHead, ReusedHeadIsReset) {
  RequestHead head;
  HttpError error;
  const std::string post = request_with(
      "Host: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nX: 1\r\n", "POST / HTTP/1.1");
  ASSERT_EQ(parse_request_head(post, {}, head, error), ParseStatus::kComplete);
  ASSERT_EQ(parse_request_head(kGet, {}, head, error), ParseStatus::kComplete);
  EXPECT_EQ(head.body, BodyKind::kNone);
  EXPECT_EQ(head.content_length, 0u);
  EXPECT_FALSE(head.expect_continue);
  EXPECT_EQ(head.headers.size(), 1u);
}

// ---------------------------------------------------------------------------
// Incremental input

TEST(HttpRequestHead, EveryPrefixIsIncomplete) {
  const std::string heads[] = {
      kGet,
      "\r\n\r\nPOST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
  };
  for (const std::string& data : heads) {
    for (std::size_t n = 0; n < data.size(); ++n) {
      RequestHead head;
      HttpError error;
      EXPECT_EQ(parse_request_head(std::string_view(data).substr(0, n), {}, head, error),
                ParseStatus::kIncomplete)
          << n << " bytes of " << data << ": " << error.reason;
    }
    EXPECT_EQ(request_ok(data).head_bytes, data.size());
  }
}

TEST(HttpRequestHead, GarbageIsRefusedBeforeTheHeadEnds) {
  // A TLS ClientHello on the plain port: refused on its first byte.
  EXPECT_EQ(request_error("\x16\x03\x01\x02"), 400);
  EXPECT_EQ(request_error("GET / HTTP/2.0\r\nHost: a\r\n"), 505);
  EXPECT_EQ(request_error("GET / HTTP/1.1\nHo"), 400);
  EXPECT_EQ(request_error("CONNECT a:443 HTTP/1.1\r\n"), 501);
}

TEST(HttpRequestHead, PipelinedRequestsInOneBuffer) {
  const std::string buffer =
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
      "\r\n"  // a stray CRLF after a body, as old clients send
      "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
      "HEAD /4 HTTP/1.1\r\nHost: a\r\n\r\n";
  std::vector<std::string> targets;
  std::string_view rest = buffer;
  RequestHead head;
  HttpError error;
  BodyFramer framer;
  while (!rest.empty()) {
    ASSERT_EQ(parse_request_head(rest, {}, head, error), ParseStatus::kComplete) << error.reason;
    targets.emplace_back(head.target);
    rest.remove_prefix(head.head_bytes);
    framer.reset(head.body, head.content_length);
    rest.remove_prefix(framer.feed(rest.data(), rest.size()));
    ASSERT_TRUE(framer.done());
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"/1", "/2", "/3", "/4"}));
}

// ---------------------------------------------------------------------------
// Response heads

TEST(HttpResponseHead, StatusLine) {
  ResponseHead h = response_ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.version_minor, 1);
  h = response_ok("HTTP/1.0 404 Not  Found here\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(h.version_minor, 0);
  EXPECT_EQ(h.reason, "Not  Found here");
  EXPECT_EQ(response_ok("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n").reason, "");
  EXPECT_EQ(response_ok("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").reason, "");
  EXPECT_EQ(response_ok("HTTP/1.1 599 x\r\n\r\n").status, 599);
  EXPECT_EQ(response_ok("HTTP/1.1 100 Continue\r\n\r\n").status, 100);
}

TEST(HttpResponseHead, Framing) {
  struct Case {
    const char* data;
    bool request_is_head;
    BodyKind body;
    bool keep_alive;
    bool interim;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, BodyKind::kLength, true, false},
      {"HTTP/1.1 200 OK\r\n\r\n", false, BodyKind::kUntilClose, false, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyKind::kChunked, true,
       false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", false, BodyKind::kChunked,
       true, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, BodyKind::kUntilClose, false,
       false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, BodyKind::kUntilClose,
       false, false},
      // Both framing fields: Transfer-Encoding wins and the connection is not reused.
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", false,
       BodyKind::kChunked, false, false},
      {"HTTP/1.1 204 No Content\r\n\r\n", false, BodyKind::kNone, true, false},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, BodyKind::kNone, true,
       false},
      {"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyKind::kNone,
       true, false},
      {"HTTP/1.1 100 Continue\r\n\r\n", false, BodyKind::kNone, true, true},
      {"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false, BodyKind::kNone, true, true},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", false, BodyKind::kNone, false,
       false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, BodyKind::kNone, true, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, BodyKind::kNone, true, false},
      {"HTTP/1.1 200 OK\r\n\r\n", true, BodyKind::kNone, true, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false, BodyKind::kLength, false, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n", false,
       BodyKind::kLength, true, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", false,
       BodyKind::kLength, false, false},
  };
  for (const Case& c : cases) {
    const ResponseHead h = response_ok(c.data, c.request_is_head);
    EXPECT_EQ(h.body, c.body) << c.data;
    EXPECT_EQ(h.keep_alive, c.keep_alive) << c.data;
    EXPECT_EQ(h.interim, c.interim) << c.data;
    EXPECT_EQ(h.head_bytes, std::string_view(c.data).size());
  }
  EXPECT_EQ(response_ok("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").content_length, 5u);
}

TEST(HttpResponseHead, ErrorsAreAll502) {
  const std::string cases[] = {
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 099 x\r\n\r\n",
      "HTTP/1.1 600 x\r\n\r\n",
      "HTTP/1.1 2x0 x\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "http/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\n\r\n",
      "HTTP/1.1 200 OK\r\nX: 1\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 204 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n"s,
      "\r\nHTTP/1.1 200 OK\r\n\r\n",
      "\r\n\r\n",
      "HTTX",  // cannot begin a status line: refused before the head ends
  };
  for (const std::string& data : cases) {
    ResponseHead head;
    HttpError error;
    EXPECT_EQ(parse_response_head(data, {}, false, head, error), ParseStatus::kError) << data;
    EXPECT_EQ(error.status, 502) << data;
  }
}

TEST(HttpResponseHead, LimitsGive502) {
  ResponseHead head;
  HttpError error;
  const HttpLimits small{.head_bytes_max = 32, .headers_max = 1};
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nX: " + std::string(40, 'a'), small, false, head,
                                error),
            ParseStatus::kError);
  EXPECT_EQ(error.status, 502);
  EXPECT_EQ(
      parse_response_head("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", small, false, head, error),
      ParseStatus::kError);
  EXPECT_EQ(error.status, 502);
}

TEST(HttpResponseHead, EveryPrefixIsIncomplete) {
  const std::string data =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t n = 0; n < data.size(); ++n) {
    ResponseHead head;
    HttpError error;
    EXPECT_EQ(parse_response_head(std::string_view(data).substr(0, n), {}, false, head, error),
              ParseStatus::kIncomplete)
        << n;
  }
  EXPECT_EQ(response_ok(data).body, BodyKind::kChunked);
}

TEST(HttpResponseHead, InterimThenFinalInOneBuffer) {
  const std::string buffer =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ResponseHead head;
  HttpError error;
  std::string_view rest = buffer;
  ASSERT_EQ(parse_response_head(rest, {}, false, head, error), ParseStatus::kComplete);
  EXPECT_TRUE(head.interim);
  rest.remove_prefix(head.head_bytes);
  ASSERT_EQ(parse_response_head(rest, {}, false, head, error), ParseStatus::kComplete);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(rest.size() - head.head_bytes, head.content_length);
}

// ---------------------------------------------------------------------------
// BodyFramer

// Feeds `data` in pieces of `piece` bytes; returns the bytes consumed.
std::size_t feed_in_pieces(BodyFramer& framer, std::string_view data, std::size_t piece) {
  std::size_t used = 0;
  while (used < data.size() && !framer.done() && !framer.failed()) {
    const std::size_t n = std::min(piece, data.size() - used);
    const std::size_t took = framer.feed(data.data() + used, n);
    EXPECT_LE(took, n);
    used += took;
    if (took < n) break;
  }
  return used;
}

const std::size_t kPieces[] = {1, 2, 3, 7, 1u << 20};

TEST(BodyFramer, ValidChunkedBodies) {
  const std::string bodies[] = {
      "0\r\n\r\n",
      "000\r\n\r\n",
      "5\r\nhello\r\n0\r\n\r\n",
      "5;name=value\r\nhello\r\n0;x\r\n\r\n",
      "5 ;name=\"q v\"\r\nhello\r\n0\r\n\r\n",
      "5\t; a\r\nhello\r\n0\r\n\r\n",
      "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
      "0000000000000005\r\nhello\r\n0\r\n\r\n",
      "3\r\n\r\n\r\r\n0\r\n\r\n",  // data may contain CR and LF
      "0\r\nX-Trailer: 1\r\nY:\r\nZ: a\tb \xff\r\n\r\n",
  };
  for (const std::string& body : bodies) {
    const std::string stream = body + "GET / HTTP/1.1\r\n";
    for (std::size_t piece : kPieces) {
      BodyFramer framer;
      framer.reset(BodyKind::kChunked, 0);
      EXPECT_EQ(framer.kind(), BodyKind::kChunked);
      EXPECT_EQ(feed_in_pieces(framer, stream, piece), body.size()) << body << " / " << piece;
      EXPECT_TRUE(framer.done()) << body << " / " << piece;
      EXPECT_FALSE(framer.failed());
      EXPECT_EQ(framer.feed(stream.data(), stream.size()), 0u);
    }
  }
}

TEST(BodyFramer, InvalidChunkedBodies) {
  struct Case {
    std::string body;
    std::size_t valid_bytes;  // where the framing breaks
  };
  const Case cases[] = {
      {"x\r\n", 0},
      {"\r\n", 0},
      {" 5\r\nhello\r\n", 0},
      {"-5\r\n", 0},
      {"0x5\r\n", 1},
      {"5\nhello\r\n", 1},
      {"5\r\r\n", 2},
      {"5 \r\nhello\r\n", 2},
      {"5\r\nhelloX\r\n", 8},
      {"5\r\nhello\rX", 9},
      {"5\r\nhello\n", 8},
      {"5\r\nhello\r\n\r\n", 10},
      {"00000000000000005\r\n", 16},
      {"5;a\nb", 3},
      {"5;a\0b\r\n"s, 3},
      {"5;" + std::string(4097, 'e') + "\r\n", 4098},
      {"0\r\nX: a\r\n b\r\n\r\n", 9},
      {"0\r\nX\r\n\r\n", 4},
      {"0\r\nX : a\r\n\r\n", 4},
      {"0\r\nX: a\n\r\n", 7},
      {"0\r\nX: a\0\r\n\r\n"s, 7},
      {"0\r\n\n", 3},
      {"0\r\n\rX", 4},
  };
  for (const Case& c : cases) {
    for (std::size_t piece : kPieces) {
      BodyFramer framer;
      framer.reset(BodyKind::kChunked, 0);
      EXPECT_EQ(feed_in_pieces(framer, c.body, piece), c.valid_bytes) << c.body << " / " << piece;
      EXPECT_TRUE(framer.failed()) << c.body << " / " << piece;
      EXPECT_FALSE(framer.done());
      EXPECT_EQ(framer.feed(c.body.data(), c.body.size()), 0u);
    }
  }
}

TEST(BodyFramer, TrailerLimit) {
  const std::string trailer = "X: " + std::string(20, 'a') + "\r\n\r\n";  // 27 bytes
  BodyFramer framer;
  framer.reset(BodyKind::kChunked, 0, trailer.size());
  const std::string body = "0\r\n" + trailer;
  EXPECT_EQ(framer.feed(body.data(), body.size()), body.size());
  EXPECT_TRUE(framer.done());
  framer.reset(BodyKind::kChunked, 0, trailer.size() - 1);
  EXPECT_EQ(framer.feed(body.data(), body.size()), body.size() - 1);
  EXPECT_TRUE(framer.failed());
}

TEST(BodyFramer, HugeChunkIsSkippedWithoutBuffering) {
  BodyFramer framer;
  framer.reset(BodyKind::kChunked, 0);
  const std::string size_line = "FFFFFFFFFFFFFFFF\r\n";
  EXPECT_EQ(framer.feed(size_line.data(), size_line.size()), size_line.size());
  const std::string data(1 << 16, 'z');
  EXPECT_EQ(framer.feed(data.data(), data.size()), data.size());
  EXPECT_FALSE(framer.done());
  EXPECT_FALSE(framer.failed());
}

TEST(BodyFramer, ContentLength) {
  const std::string stream = "0123456789NEXT";
  for (std::size_t piece : kPieces) {
    BodyFramer framer;
    framer.reset(BodyKind::kLength, 10);
    EXPECT_EQ(feed_in_pieces(framer, stream, piece), 10u);
    EXPECT_TRUE(framer.done());
  }
  BodyFramer empty;
  empty.reset(BodyKind::kLength, 0);
  EXPECT_TRUE(empty.done());
  EXPECT_EQ(empty.feed(stream.data(), stream.size()), 0u);
}

TEST(BodyFramer, NoneAndUntilClose) {
  const std::string stream = "abc";
  BodyFramer none;
  EXPECT_TRUE(none.done());
  EXPECT_EQ(none.kind(), BodyKind::kNone);
  EXPECT_EQ(none.feed(stream.data(), stream.size()), 0u);
  BodyFramer until_close;
  until_close.reset(BodyKind::kUntilClose, 0);
  EXPECT_EQ(until_close.feed(stream.data(), stream.size()), 3u);
  EXPECT_EQ(until_close.feed(stream.data(), 0), 0u);
  EXPECT_FALSE(until_close.done());
  EXPECT_FALSE(until_close.failed());
}

TEST(BodyFramer, ResetClearsFailure) {
  BodyFramer framer;
  framer.reset(BodyKind::kChunked, 0);
  EXPECT_EQ(framer.feed("zz", 2), 0u);
  EXPECT_TRUE(framer.failed());
  framer.reset(BodyKind::kChunked, 0);
  EXPECT_EQ(framer.feed("0\r\n\r\n", 5), 5u);
  EXPECT_TRUE(framer.done());
}

// ---------------------------------------------------------------------------
// Writers

std::string forwarded_request(std::string_view data, const ForwardOptions& options) {
  std::string out;
  append_request_head(request_ok(data), options, out);
  return out;
}

TEST(HttpWriter, RequestDropsHopByHopFields) {
  const std::string data =
      "POST /x?y HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Private, TE\r\n"
      "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: websocket\r\n"
      "x-private: secret\r\nTE: trailers\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n"
      "Accept: */*\r\n\r\n";
  EXPECT_EQ(forwarded_request(data, {.client_ip = "10.0.0.1"}),
            "POST /x?y HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n"
            "Accept: */*\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n");
}

TEST(HttpWriter, ConnectionCannotDropFramingOrHost) {
  const std::string data =
      "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, host, Transfer-Encoding\r\n"
      "Content-Length: 3\r\n\r\n";
  EXPECT_EQ(forwarded_request(data, {.client_ip = "", .x_forwarded_for = false}),
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
}

TEST(HttpWriter, RepeatedContentLengthIsSentOnce) {
  const std::string data =
      "POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 3, 3\r\nContent-Length: 3\r\n\r\n";
  EXPECT_EQ(forwarded_request(data, {.client_ip = "", .x_forwarded_for = false}),
            "POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 3\r\n\r\n");
}

TEST(HttpWriter, ForwardingFields) {
  const std::string plain = kGet;
  EXPECT_EQ(forwarded_request(plain, {.client_ip = "192.0.2.7", .forwarded = true}),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.7\r\n"
            "Forwarded: for=192.0.2.7;proto=http\r\n\r\n");
  EXPECT_EQ(forwarded_request(
                plain, {.client_ip = "2001:db8::1", .x_forwarded_for = false, .forwarded = true}),
            "GET / HTTP/1.1\r\nHost: a\r\nForwarded: for=\"[2001:db8::1]\";proto=http\r\n\r\n");
  // Existing lists are extended, several fields merged into one.
  const std::string proxied = request_with(
      "Host: a\r\nX-Forwarded-For: 1.1.1.1\r\nForwarded: for=1.1.1.1\r\nx-forwarded-for: 2.2.2.2, "
      "3.3.3.3\r\nX-Forwarded-For:\r\n");
  EXPECT_EQ(forwarded_request(proxied, {.client_ip = "9.9.9.9", .forwarded = true}),
            "GET / HTTP/1.1\r\nHost: a\r\n"
            "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 9.9.9.9\r\n"
            "Forwarded: for=1.1.1.1, for=9.9.9.9;proto=http\r\n\r\n");
  // Disabled: existing fields pass through untouched.
  EXPECT_EQ(forwarded_request(proxied, {.client_ip = "9.9.9.9", .x_forwarded_for = false}),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nForwarded: for=1.1.1.1\r\n"
            "x-forwarded-for: 2.2.2.2, 3.3.3.3\r\nX-Forwarded-For: \r\n\r\n");
}

TEST(HttpWriter, HopByHopForwardingFieldsAreNotCarriedOver) {
  const std::string data =
      request_with("Host: a\r\nConnection: X-Forwarded-For\r\nX-Forwarded-For: 6.6.6.6\r\n");
  EXPECT_EQ(forwarded_request(data, {.client_ip = "10.0.0.1"}),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n");
  EXPECT_EQ(forwarded_request(kGet, {.client_ip = ""}),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: unknown\r\n\r\n");
}

TEST(HttpWriter, Http10RequestAsksForKeepAlive) {
  EXPECT_EQ(forwarded_request("GET /a HTTP/1.0\r\nConnection: close\r\n\r\n",
                              {.client_ip = "", .x_forwarded_for = false}),
            "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
}

TEST(HttpWriter, ForwardedRequestParsesTheSame) {
  const std::string data =
      "\r\nPUT /r HTTP/1.1\r\nHost: h:1\r\nConnection: close, X-A\r\nX-A: 1\r\n"
      "Content-Length: 4, 4\r\nExpect: 100-continue\r\n\r\n";
  const RequestHead original = request_ok(data);
  std::string out;
  append_request_head(original, {.client_ip = "::1", .forwarded = true}, out);
  const RequestHead again = request_ok(out);
  EXPECT_EQ(again.method, original.method);
  EXPECT_EQ(again.target, original.target);
  EXPECT_EQ(again.host, original.host);
  EXPECT_EQ(again.body, original.body);
  EXPECT_EQ(again.content_length, original.content_length);
  EXPECT_TRUE(again.keep_alive);
  EXPECT_TRUE(again.expect_continue);
}

std::string forwarded_response(std::string_view data, bool keep_alive, int client_minor) {
  std::string out;
  append_response_head(response_ok(data), keep_alive, client_minor, out);
  return out;
}

TEST(HttpWriter, ResponseConnectionHandling) {
  const std::string data =
      "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-B\r\nKeep-Alive: timeout=3\r\nX-B: 1\r\n"
      "Content-Length: 2\r\n\r\n";
  EXPECT_EQ(forwarded_response(data, true, 1), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(forwarded_response(data, false, 1),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(forwarded_response(data, true, 0),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(forwarded_response(data, false, 0),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
}

TEST(HttpWriter, ResponseFramingFields) {
  // Transfer-Encoding frames the body, so Content-Length is dropped.
  EXPECT_EQ(
      forwarded_response(
          "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n", true, 1),
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(forwarded_response("HTTP/1.0 200\r\nContent-Length: 2, 2\r\n\r\n", true, 1),
            "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\n");
}

TEST(HttpWriter, ErrorResponses) {
  for (int status : {400, 403, 408, 413, 431, 500, 501, 502, 503, 504, 505, 599}) {
    const std::string text = make_error_response(status);
    const ResponseHead h = response_ok(text);
    EXPECT_EQ(h.status, status);
    EXPECT_EQ(h.reason, status_reason(status));
    EXPECT_FALSE(h.keep_alive);
    ASSERT_EQ(h.body, BodyKind::kLength);
    const std::string_view body = std::string_view(text).substr(h.head_bytes);
    EXPECT_EQ(body.size(), h.content_length);
    EXPECT_EQ(body, std::to_string(status) + " " + std::string(status_reason(status)) + "\n");
  }
  EXPECT_NE(make_error_response(431).find("Content-Type: text/plain\r\n"), std::string::npos);
  EXPECT_EQ(status_reason(599), "Error");
  // Only error statuses: anything else becomes a plain 500.
  EXPECT_EQ(response_ok(make_error_response(204)).status, 500);
}

// ---------------------------------------------------------------------------
// Upgrade (RFC 9110 7.8)

TEST(HttpUpgrade, CountsOnlyWhenConnectionNamesItInHttp11) {
  const std::string ws = "Host: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n";
  const std::string ws_request = request_with(ws);
  EXPECT_EQ(request_ok(ws_request).upgrade, "websocket");
  EXPECT_EQ(request_ok(request_with("Host: a\r\nUpgrade: websocket\r\n")).upgrade, "");
  EXPECT_EQ(request_ok(request_with(ws, "GET / HTTP/1.0")).upgrade, "");
}

TEST(HttpUpgrade, RequestKeepsUpgradeForTheServerOnlyWhenAsked) {
  std::string out;
  const std::string ws_request =
      request_with("Host: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n");
  append_request_head(request_ok(ws_request), {.client_ip = "192.0.2.1"}, out);
  EXPECT_NE(out.find("\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"), std::string::npos)
      << out;
  out.clear();
  const std::string plain = request_with("Host: a\r\nUpgrade: websocket\r\n");
  append_request_head(request_ok(plain), {.client_ip = "192.0.2.1"}, out);
  EXPECT_EQ(out.find("pgrade"), std::string::npos) << out;
}

TEST(HttpUpgrade, SwitchingProtocolsHeadKeepsUpgrade) {
  const ResponseHead head = response_ok(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Hop\r\n"
      "X-Hop: 1\r\nSec-WebSocket-Accept: abc\r\n\r\n");
  std::string out;
  append_switching_protocols_head(head, out);
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Accept: abc\r\nConnection: upgrade\r\n\r\n");
}

}  // namespace
}  // namespace bulwark::proxy
