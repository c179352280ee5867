#include "security/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
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

struct HmacSha256::Impl {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
};

HmacSha256::HmacSha256(std::span<const uint8_t> key) : impl_(new Impl) {
  impl_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  BW_CHECK(impl_->mac != nullptr, "OpenSSL has no HMAC");
  impl_->ctx = EVP_MAC_CTX_new(impl_->mac);
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0), OSSL_PARAM_END};
  // An empty key is valid HMAC input; OpenSSL wants a non-null pointer.
  static const uint8_t kEmpty = 0;
  BW_CHECK(EVP_MAC_init(impl_->ctx, key.empty() ? &kEmpty : key.data(), key.size(), params) == 1,
           "HMAC init failed");
}

HmacSha256::~HmacSha256() {
  EVP_MAC_CTX_free(impl_->ctx);
  EVP_MAC_free(impl_->mac);
  delete impl_;
}

Digest HmacSha256::digest(std::span<const uint8_t> data) {
  // Re-initialising with a null key keeps the key and resets the state.
  BW_CHECK(EVP_MAC_init(impl_->ctx, nullptr, 0, nullptr) == 1, "HMAC reset failed");
  BW_CHECK(EVP_MAC_update(impl_->ctx, data.data(), data.size()) == 1, "HMAC update failed");
  Digest out{};
  std::size_t len = 0;
  BW_CHECK(EVP_MAC_final(impl_->ctx, out.data(), &len, out.size()) == 1 && len == out.size(),
           "HMAC final failed");
  return out;
}

bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  return constant_time_equal(std::span(reinterpret_cast<const uint8_t*>(a.data()), a.size()),
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
  if (s.size() < 16)
    return make_error(Errc::kInvalid, path + ": empty or too short to be a secret");
  return s;
}

}  // namespace bulwark
