// Thin wrappers over OpenSSL for what Bulwark needs: HMAC-SHA256 for
// heartbeats, constant-time comparison, random secrets. No home-made crypto.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "core/error.h"

namespace bulwark {

using Digest = std::array<uint8_t, 32>;

Digest hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data);

// HMAC-SHA256 with a key set up once. OpenSSL 3 looks the algorithm up on
// every one-shot call, which made heartbeats the daemon's main idle cost;
// this keeps a keyed context and only resets it per message.
// Thread-safety: none; one owner.
class HmacSha256 {
 public:
  explicit HmacSha256(std::span<const uint8_t> key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  Digest digest(std::span<const uint8_t> data);

 private:
  struct Impl;
  Impl* impl_;
};
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);
bool constant_time_equal(const std::string& a, const std::string& b);
// `bytes` random bytes from OpenSSL's CSPRNG, hex-encoded.
std::string random_hex(std::size_t bytes);
uint64_t random_u64();

// Reads a secret file (cluster secret, admin token): trims whitespace, refuses
// an empty or unreadable file with a message naming it.
Result<std::string> read_secret_file(const std::string& path);

}  // namespace bulwark
