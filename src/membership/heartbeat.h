// Heartbeat wire format. Every datagram is authenticated with HMAC-SHA256
// keyed by the cluster secret; a datagram whose tag does not verify is dropped
// before any field is trusted.
//
//   magic "BWHB" | version u8 | type u8 | flags u16
//   sender incarnation u64 | sender seq u64
//   echo incarnation u64 | echo seq u64        (pong: the ping it answers)
//   cluster, sender, receiver: u8 length + bytes each
//   HMAC-SHA256 tag over everything before it (32 bytes)
//
// Replay protection: a pong counts only if it echoes the incarnation and seq
// of a ping this process sent recently and has not yet seen answered; an
// incarnation is random per process start, so a recorded pong can never count
// twice nor in a later run.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "security/crypto.h"

namespace bulwark {

enum class HeartbeatType : uint8_t { kPing = 1, kPong = 2 };

struct Heartbeat {
  HeartbeatType type = HeartbeatType::kPing;
  uint16_t flags = 0;  // kFlagHoldsLease, kFlagSeesWatched
  uint64_t incarnation = 0;
  uint64_t seq = 0;
  uint64_t echo_incarnation = 0;
  uint64_t echo_seq = 0;
  std::string cluster;
  std::string sender;
  std::string receiver;
};

constexpr uint16_t kFlagHoldsLease = 1;
// The sender has a fresh round trip with the node it was told to watch (the
// coordinator): lets peers tell "the coordinator is gone" from "my link to
// it is gone".
constexpr uint16_t kFlagSeesWatched = 2;
constexpr std::size_t kHeartbeatMaxBytes = 1024;

std::vector<uint8_t> encode_heartbeat(const Heartbeat& hb, HmacSha256& mac);
// nullopt if the datagram is malformed or its tag does not verify.
std::optional<Heartbeat> decode_heartbeat(std::span<const uint8_t> data, HmacSha256& mac);
// The same with a one-off key (tests, tools).
std::vector<uint8_t> encode_heartbeat(const Heartbeat& hb, std::span<const uint8_t> key);
std::optional<Heartbeat> decode_heartbeat(std::span<const uint8_t> data,
                                          std::span<const uint8_t> key);

}  // namespace bulwark
