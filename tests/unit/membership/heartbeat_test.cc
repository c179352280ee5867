// Tests of the heartbeat wire format: round trips, and that nothing but an
// intact datagram tagged with the cluster secret ever decodes.
#include "membership/heartbeat.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "security/crypto.h"

namespace bulwark {
namespace {

constexpr std::size_t kTagBytes = 32;
constexpr std::size_t kAnswerBytes = 6;  // member hash u32, age u16

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

const std::string kSecret = "cluster secret for the heartbeat tests";

Heartbeat sample_pong() {
  Heartbeat hb;
  hb.type = HeartbeatType::kPong;
  hb.flags = kFlagHoldsLease;
  hb.incarnation = 0x0123456789abcdefULL;
  hb.seq = 42;
  hb.echo_incarnation = 0xfedcba9876543210ULL;
  hb.echo_seq = 0xffffffffffffffffULL;
  hb.cluster = "demo";
  hb.sender = "n2";
  hb.receiver = "n1";
  hb.answers = {{heartbeat_name_hash("n1"), 0},
                {heartbeat_name_hash("n3"), 1234},
                {heartbeat_name_hash("n4"), kAnswerAgeMaxMs}};
  return hb;
}

void expect_same(const Heartbeat& a, const Heartbeat& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.flags, b.flags);
  EXPECT_EQ(a.incarnation, b.incarnation);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.echo_incarnation, b.echo_incarnation);
  EXPECT_EQ(a.echo_seq, b.echo_seq);
  EXPECT_EQ(a.cluster, b.cluster);
  EXPECT_EQ(a.sender, b.sender);
  EXPECT_EQ(a.receiver, b.receiver);
  ASSERT_EQ(a.answers.size(), b.answers.size());
  for (std::size_t i = 0; i < a.answers.size(); ++i) {
    EXPECT_EQ(a.answers[i].member_hash, b.answers[i].member_hash) << "entry " << i;
    EXPECT_EQ(a.answers[i].age_ms, b.answers[i].age_ms) << "entry " << i;
  }
}

// Replaces the tag of `bytes` by a valid one over its (possibly altered)
// body, to reach the checks that run after authentication.
std::vector<uint8_t> retag(std::vector<uint8_t> body_and_old_tag) {
  body_and_old_tag.resize(body_and_old_tag.size() - kTagBytes);
  const Digest tag = hmac_sha256(as_bytes(kSecret), body_and_old_tag);
  body_and_old_tag.insert(body_and_old_tag.end(), tag.begin(), tag.end());
  return body_and_old_tag;
}

TEST(HeartbeatTest, PongRoundTrips) {
  const Heartbeat hb = sample_pong();
  const auto bytes = encode_heartbeat(hb, as_bytes(kSecret));
  // Fixed header 4+1+1+2+4*8, three length-prefixed strings, the report's
  // count and three entries of hash u32 + age u16, the tag.
  EXPECT_EQ(bytes.size(), 40u + (1 + 4) + (1 + 2) + (1 + 2) + (1 + 3 * kAnswerBytes) + kTagBytes);
  const auto back = decode_heartbeat(bytes, as_bytes(kSecret));
  ASSERT_TRUE(back.has_value());
  expect_same(*back, hb);
}

TEST(HeartbeatTest, PingWithEmptyAndMaximalStringsRoundTrips) {
  Heartbeat ping;
  ping.type = HeartbeatType::kPing;
  ping.seq = 1;
  ping.cluster = std::string(255, 'c');
  ping.sender = "";
  ping.receiver = std::string(255, 'r');
  const auto bytes = encode_heartbeat(ping, as_bytes(kSecret));
  EXPECT_LE(bytes.size(), kHeartbeatMaxBytes);
  const auto back = decode_heartbeat(bytes, as_bytes(kSecret));
  ASSERT_TRUE(back.has_value());
  expect_same(*back, ping);
}

TEST(HeartbeatTest, EncodingIsDeterministic) {
  const auto a = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  const auto b = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  EXPECT_EQ(a, b);
  EXPECT_EQ(std::string(a.begin(), a.begin() + 4), "BWHB");
}

TEST(HeartbeatTest, AnyFlippedByteFailsTheTag) {
  const auto good = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  ASSERT_TRUE(decode_heartbeat(good, as_bytes(kSecret)).has_value());
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      auto bad = good;
      bad[i] ^= mask;
      EXPECT_FALSE(decode_heartbeat(bad, as_bytes(kSecret)).has_value())
          << "byte " << i << " xor " << int{mask} << " still decoded";
    }
  }
}

TEST(HeartbeatTest, WrongKeyFails) {
  const auto bytes = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  EXPECT_FALSE(decode_heartbeat(bytes, as_bytes("another cluster's secret")).has_value());
  EXPECT_FALSE(decode_heartbeat(bytes, as_bytes(kSecret + "x")).has_value());
  EXPECT_FALSE(decode_heartbeat(bytes, as_bytes("")).has_value());
}

TEST(HeartbeatTest, TruncatedInputFails) {
  const auto good = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  for (std::size_t len = 0; len < good.size(); ++len) {
    const std::vector<uint8_t> cut(good.begin(), good.begin() + len);
    EXPECT_FALSE(decode_heartbeat(cut, as_bytes(kSecret)).has_value()) << "length " << len;
  }
}

TEST(HeartbeatTest, TrailingBytesFailEvenWithAValidTag) {
  // Someone holding the secret cannot smuggle bytes past the parser either.
  auto body = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  body.resize(body.size() - kTagBytes);
  body.push_back(0);
  body.insert(body.end(), kTagBytes, 0);  // placeholder for retag()
  EXPECT_FALSE(decode_heartbeat(retag(body), as_bytes(kSecret)).has_value());
}

TEST(HeartbeatTest, OversizedInputFails) {
  const auto good = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  // Appended garbage breaks the tag.
  auto padded = good;
  padded.resize(kHeartbeatMaxBytes + 1, 0);
  EXPECT_FALSE(decode_heartbeat(padded, as_bytes(kSecret)).has_value());
  // An oversized datagram with a valid tag is refused too.
  // (The last kTagBytes of `body` are the placeholder retag() replaces.)
  auto body = good;
  body.resize(kHeartbeatMaxBytes + 1, 'x');
  const auto tagged = retag(body);
  ASSERT_EQ(tagged.size(), kHeartbeatMaxBytes + 1);
  EXPECT_FALSE(decode_heartbeat(tagged, as_bytes(kSecret)).has_value());
  // Far larger than any datagram.
  const std::vector<uint8_t> huge(65536, 0xab);
  EXPECT_FALSE(decode_heartbeat(huge, as_bytes(kSecret)).has_value());
}

TEST(HeartbeatTest, AuthenticButMalformedHeaderFails) {
  const auto good = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  struct Change {
    std::size_t offset;
    uint8_t value;
    const char* what;
  };
  for (const Change c : {Change{0, 'X', "magic"}, Change{3, 'b', "magic"}, Change{4, 1, "version"},
                         Change{4, 3, "version"}, Change{4, 0, "version"}, Change{5, 0, "type"},
                         Change{5, 3, "type"}}) {
    auto bad = good;
    bad[c.offset] = c.value;
    EXPECT_FALSE(decode_heartbeat(retag(bad), as_bytes(kSecret)).has_value())
        << c.what << " byte " << c.offset << " = " << int{c.value};
  }
  // A string length that runs past the body.
  auto bad = good;
  bad[40] = 200;  // the cluster name's length
  EXPECT_FALSE(decode_heartbeat(retag(bad), as_bytes(kSecret)).has_value());
  // The retagging itself is sound: an unchanged body still decodes.
  EXPECT_TRUE(decode_heartbeat(retag(good), as_bytes(kSecret)).has_value());
}

TEST(HeartbeatTest, NameHashIsFnv1a32) {
  // Reference values of 32-bit FNV-1a (draft-eastlake-fnv): a report written
  // by one build must be read alike by every other.
  EXPECT_EQ(heartbeat_name_hash(""), 0x811c9dc5u);
  EXPECT_EQ(heartbeat_name_hash("a"), 0xe40c292cu);
  EXPECT_EQ(heartbeat_name_hash("foobar"), 0xbf9cf968u);
}

TEST(HeartbeatTest, VersionOneDatagramIsRejected) {
  Heartbeat ping;
  ping.type = HeartbeatType::kPing;
  ping.seq = 7;
  ping.cluster = "demo";
  ping.sender = "n1";
  ping.receiver = "n2";
  auto v2 = encode_heartbeat(ping, as_bytes(kSecret));
  ASSERT_TRUE(decode_heartbeat(v2, as_bytes(kSecret)).has_value());
  EXPECT_EQ(v2[4], kHeartbeatVersion);
  EXPECT_EQ(kHeartbeatVersion, 2);
  // Exactly what a version-1 node sends: no report section, version 1, a
  // valid tag. It must not decode, although its tag verifies.
  auto v1 = v2;
  v1.erase(v1.end() - kTagBytes - 1);  // the empty report's count byte
  v1[4] = 1;
  v1 = retag(v1);
  EXPECT_FALSE(decode_heartbeat(v1, as_bytes(kSecret)).has_value());
  // Nor does a version-1 header on a version-2 body.
  v2[4] = 1;
  EXPECT_FALSE(decode_heartbeat(retag(v2), as_bytes(kSecret)).has_value());
}

TEST(HeartbeatTest, MalformedReportFails) {
  // Offset of the report's count byte in sample_pong()'s encoding.
  constexpr std::size_t kCountOffset = 40 + (1 + 4) + (1 + 2) + (1 + 2);
  const auto good = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  const std::size_t sample_entries = sample_pong().answers.size();
  ASSERT_EQ(good[kCountOffset], sample_entries);
  // A count that promises more entries than follow.
  auto bad = good;
  bad[kCountOffset] = static_cast<uint8_t>(sample_entries + 1);
  EXPECT_FALSE(decode_heartbeat(retag(bad), as_bytes(kSecret)).has_value());
  // One that promises fewer: the rest are trailing bytes.
  bad[kCountOffset] = static_cast<uint8_t>(sample_entries - 1);
  EXPECT_FALSE(decode_heartbeat(retag(bad), as_bytes(kSecret)).has_value());
  // More entries than any sender may write, even when they are all there.
  bad = good;
  bad.resize(bad.size() - kTagBytes);
  bad[kCountOffset] = kHeartbeatAnswersMax + 1;
  for (std::size_t i = sample_entries; i < kHeartbeatAnswersMax + 1; ++i) {
    bad.insert(bad.end(), kAnswerBytes, 0);
  }
  bad.insert(bad.end(), kTagBytes, 0);  // placeholder for retag()
  EXPECT_FALSE(decode_heartbeat(retag(bad), as_bytes(kSecret)).has_value());
  // The same with the maximal count decodes: the limit, not the layout, failed.
  bad.erase(bad.end() - kTagBytes - kAnswerBytes, bad.end() - kTagBytes);
  bad[kCountOffset] = kHeartbeatAnswersMax;
  const auto full = decode_heartbeat(retag(bad), as_bytes(kSecret));
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->answers.size(), kHeartbeatAnswersMax);
}

TEST(HeartbeatTest, SixteenNodePongWithLongNamesFits) {
  // DESIGN.md's largest cluster: 16 nodes, names of 63 characters (a DNS
  // label's limit). A pong reports on the 15 members other than its sender.
  Heartbeat pong = sample_pong();
  pong.cluster = std::string(63, 'c');
  pong.sender = std::string(63, 's');
  pong.receiver = std::string(63, 'r');
  pong.answers.clear();
  for (int i = 0; i < 15; ++i) {
    pong.answers.push_back({heartbeat_name_hash(std::string(62, 'n') + static_cast<char>('a' + i)),
                            static_cast<uint16_t>(i)});
  }
  const auto bytes = encode_heartbeat(pong, as_bytes(kSecret));
  EXPECT_EQ(bytes.size(), 40u + 3 * (1 + 63) + (1 + 15 * kAnswerBytes) + kTagBytes);
  EXPECT_LE(bytes.size(), kHeartbeatMaxBytes);
  const auto back = decode_heartbeat(bytes, as_bytes(kSecret));
  ASSERT_TRUE(back.has_value());
  expect_same(*back, pong);
}

TEST(HeartbeatTest, LargestEncodableHeartbeatFitsAndDecodes) {
  Heartbeat pong = sample_pong();
  pong.cluster = std::string(255, 'c');
  pong.sender = std::string(255, 's');
  pong.receiver = std::string(255, 'r');
  pong.answers.assign(kHeartbeatAnswersMax, AnswerReport{0xffffffffu, kAnswerAgeMaxMs});
  const auto bytes = encode_heartbeat(pong, as_bytes(kSecret));
  EXPECT_LE(bytes.size(), kHeartbeatMaxBytes);
  const auto back = decode_heartbeat(bytes, as_bytes(kSecret));
  ASSERT_TRUE(back.has_value());
  expect_same(*back, pong);
}

TEST(HeartbeatDeathTest, EncodingAnOverlongReportIsABug) {
  Heartbeat pong = sample_pong();
  pong.answers.assign(kHeartbeatAnswersMax + 1, AnswerReport{});
  EXPECT_DEATH(encode_heartbeat(pong, as_bytes(kSecret)), "answer report too long");
}

TEST(HeartbeatTest, RandomBytesNeverDecode) {
  // Fixed seed: a failure replays exactly.
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> length(0, 1100);
  std::uniform_int_distribution<int> byte(0, 255);
  const auto good = encode_heartbeat(sample_pong(), as_bytes(kSecret));
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> buf(static_cast<std::size_t>(length(rng)));
    for (auto& b : buf) b = static_cast<uint8_t>(byte(rng));
    // Every fourth buffer starts like a real heartbeat, so the fuzzing also
    // reaches past the magic.
    if (i % 4 == 0) {
      for (std::size_t k = 0; k < buf.size() && k < good.size() - kTagBytes; ++k) buf[k] = good[k];
    }
    if (decode_heartbeat(buf, as_bytes(kSecret)).has_value()) ++decoded;
  }
  EXPECT_EQ(decoded, 0);
}

}  // namespace
}  // namespace bulwark
