#include "security/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "core/check.h"

namespace bulwark {

Digest hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  Digest out{};
  unsigned int len = 0;
  const unsigned char* res = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                                  data.data(), data.size(), out.data(), &len);
  BW_CHECK(res != nullptr && len == out.size(), "HMAC-SHA256 failed");
  return out;
}

bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  return constant_time_equal(
      std::span(reinterpret_cast<const uint8_t*>(a.data()), a.size()),
      std::span(reinterpret_cast<const uint8_t*>(b.data()), b.size()));
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  BW_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) == 1,
           "RAND_bytes failed");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

uint64_t random_u64() {
  uint64_t v = 0;
  BW_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) == 1, "RAND_bytes failed");
  return v;
}

Result<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(Errc::kInvalid, path + ": cannot read (missing or not readable)");
  std::stringstream buf;
  buf << in.rdbuf();
  std::string s = buf.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n')) s.erase(s.begin());
  if (s.size() < 16) return make_error(Errc::kInvalid, path + ": empty or too short to be a secret");
  return s;
}

}  // namespace bulwark
