// Heartbeat wire format, version 2. Every datagram is authenticated with
// HMAC-SHA256 keyed by the cluster secret; a datagram whose tag does not
// verify is dropped before any field is trusted. All integers are big-endian.
//
//   magic "BWHB" | version u8 (= 2) | type u8 | flags u16
//   sender incarnation u64 | sender seq u64
//   echo incarnation u64 | echo seq u64        (pong: the ping it answers)
//   cluster, sender, receiver: u8 length + bytes each
//   answer report: count u8 (<= kHeartbeatAnswersMax), then per entry
//     member name hash u32 (heartbeat_name_hash) | age u16 (ms)
//   HMAC-SHA256 tag over everything before it (32 bytes)
//
// The answer report (pongs; pings send it empty) says, for every member but
// the sender, how long ago the sender last answered an authentic ping from
// that member, saturating at kAnswerAgeMaxMs ("at least that long ago"). A
// node that reaches the sender learns from it when an unreachable member can
// last have extended its quorum lease through the sender (see membership.h).
// It lies inside the authenticated part: a forged report could otherwise make
// a node declare a live lease holder gone. Names are sent as 32-bit hashes to
// keep a 16-node report small; the reader resolves a hash that two of its
// members share conservatively (membership.cc).
//
// A datagram of any other version, version 1 included, is rejected like any
// malformed one: nodes of one cluster must run the same wire version.
//
// Replay protection: a pong counts only if it echoes the incarnation and seq
// of a ping this process sent recently and has not yet seen answered; an
// incarnation is random per process start, so a recorded pong can never count
// twice nor in a later run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "security/crypto.h"

namespace bulwark {

enum class HeartbeatType : uint8_t { kPing = 1, kPong = 2 };

// One entry of an answer report.
struct AnswerReport {
  uint32_t member_hash = 0;  // heartbeat_name_hash() of the member's name
  uint16_t age_ms = 0;       // since the sender last answered that member's ping
};

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
  std::vector<AnswerReport> answers;  // at most kHeartbeatAnswersMax
};

constexpr uint8_t kHeartbeatVersion = 2;
constexpr uint16_t kFlagHoldsLease = 1;
// The sender has a fresh round trip with the node it was told to watch (the
// coordinator): lets peers tell "the coordinator is gone" from "my link to
// it is gone".
constexpr uint16_t kFlagSeesWatched = 2;
constexpr std::size_t kHeartbeatMaxBytes = 1024;
// An age of this value means "this long ago or longer".
constexpr uint16_t kAnswerAgeMaxMs = std::numeric_limits<uint16_t>::max();
// Entries one report may carry. Chosen so that every datagram the encoder
// accepts (three 255-byte strings and a full report) fits in
// kHeartbeatMaxBytes (static_assert in heartbeat.cc); a 16-node cluster
// needs 15.
constexpr std::size_t kHeartbeatAnswersMax = 30;

// 32-bit FNV-1a of `name`: how a report names a member.
uint32_t heartbeat_name_hash(std::string_view name);

// Precondition: every string is at most 255 bytes and hb.answers holds at
// most kHeartbeatAnswersMax entries.
std::vector<uint8_t> encode_heartbeat(const Heartbeat& hb, HmacSha256& mac);
// nullopt if the datagram is malformed or its tag does not verify.
std::optional<Heartbeat> decode_heartbeat(std::span<const uint8_t> data, HmacSha256& mac);
// The same with a one-off key (tests, tools).
std::vector<uint8_t> encode_heartbeat(const Heartbeat& hb, std::span<const uint8_t> key);
std::optional<Heartbeat> decode_heartbeat(std::span<const uint8_t> data,
                                          std::span<const uint8_t> key);

}  // namespace bulwark
