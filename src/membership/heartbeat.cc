#include "membership/heartbeat.h"

#include <limits>
#include <tuple>

#include "core/check.h"
#include "security/crypto.h"

namespace bulwark {
namespace {

constexpr uint8_t kMagic[4] = {'B', 'W', 'H', 'B'};
constexpr std::size_t kTagBytes = std::tuple_size_v<Digest>;
// Magic, version, type, flags and the four u64 fields.
constexpr std::size_t kFixedBytes = 4 + 1 + 1 + 2 + 4 * 8;
constexpr std::size_t kStringMaxBytes = 255;
constexpr std::size_t kAnswerBytes = 4 + 2;
// The largest datagram encode_heartbeat can produce must still be accepted
// by decode_heartbeat, or a node could send what its peers drop.
static_assert(kFixedBytes + 3 * (1 + kStringMaxBytes) + 1 + kHeartbeatAnswersMax * kAnswerBytes +
                  kTagBytes <=
              kHeartbeatMaxBytes);
static_assert(kHeartbeatAnswersMax <= std::numeric_limits<uint8_t>::max(),
              "the report's entry count is one byte");
// FNV-1a, 32-bit (draft-eastlake-fnv).
constexpr uint32_t kFnvOffsetBasis = 2166136261u;
constexpr uint32_t kFnvPrime = 16777619u;

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_str(std::vector<uint8_t>& out, const std::string& s) {
  BW_CHECK(s.size() <= kStringMaxBytes, "heartbeat string too long");
  out.push_back(static_cast<uint8_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> d) : d_(d) {}
  bool u8(uint8_t& v) {
    if (pos_ + 1 > d_.size()) return false;
    v = d_[pos_++];
    return true;
  }
  bool u16(uint16_t& v) {
    uint8_t a = 0, b = 0;
    if (!u8(a) || !u8(b)) return false;
    v = static_cast<uint16_t>(a << 8 | b);
    return true;
  }
  bool u32(uint32_t& v) {
    if (pos_ + 4 > d_.size()) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | d_[pos_++];
    return true;
  }
  bool u64(uint64_t& v) {
    if (pos_ + 8 > d_.size()) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | d_[pos_++];
    return true;
  }
  bool str(std::string& s) {
    uint8_t len = 0;
    if (!u8(len) || pos_ + len > d_.size()) return false;
    s.assign(reinterpret_cast<const char*>(d_.data() + pos_), len);
    pos_ += len;
    return true;
  }
  std::size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> d_;
  std::size_t pos_ = 0;
};

}  // namespace

uint32_t heartbeat_name_hash(std::string_view name) {
  uint32_t h = kFnvOffsetBasis;
  for (const char c : name) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnvPrime;
  }
  return h;
}

std::vector<uint8_t> encode_heartbeat(const Heartbeat& hb, std::span<const uint8_t> key) {
  HmacSha256 mac(key);
  return encode_heartbeat(hb, mac);
}

std::optional<Heartbeat> decode_heartbeat(std::span<const uint8_t> data,
                                          std::span<const uint8_t> key) {
  HmacSha256 mac(key);
  return decode_heartbeat(data, mac);
}

std::vector<uint8_t> encode_heartbeat(const Heartbeat& hb, HmacSha256& mac) {
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  out.push_back(kHeartbeatVersion);
  out.push_back(static_cast<uint8_t>(hb.type));
  put_u16(out, hb.flags);
  put_u64(out, hb.incarnation);
  put_u64(out, hb.seq);
  put_u64(out, hb.echo_incarnation);
  put_u64(out, hb.echo_seq);
  put_str(out, hb.cluster);
  put_str(out, hb.sender);
  put_str(out, hb.receiver);
  BW_CHECK(hb.answers.size() <= kHeartbeatAnswersMax, "heartbeat answer report too long");
  out.push_back(static_cast<uint8_t>(hb.answers.size()));
  for (const AnswerReport& a : hb.answers) {
    put_u32(out, a.member_hash);
    put_u16(out, a.age_ms);
  }
  const Digest tag = mac.digest(out);
  out.insert(out.end(), tag.begin(), tag.end());
  BW_ASSERT(out.size() <= kHeartbeatMaxBytes, "encoded heartbeat exceeds the datagram limit");
  return out;
}

std::optional<Heartbeat> decode_heartbeat(std::span<const uint8_t> data, HmacSha256& mac) {
  if (data.size() < 4 + kTagBytes || data.size() > kHeartbeatMaxBytes) return std::nullopt;
  const auto body = data.first(data.size() - kTagBytes);
  const Digest expected = mac.digest(body);
  if (!constant_time_equal(expected, data.last(kTagBytes))) return std::nullopt;
  Reader r(body);
  uint8_t magic[4];
  for (auto& m : magic) {
    if (!r.u8(m)) return std::nullopt;
  }
  if (magic[0] != 'B' || magic[1] != 'W' || magic[2] != 'H' || magic[3] != 'B') return std::nullopt;
  uint8_t version = 0, type = 0;
  Heartbeat hb;
  if (!r.u8(version) || version != kHeartbeatVersion || !r.u8(type)) return std::nullopt;
  if (type != static_cast<uint8_t>(HeartbeatType::kPing) &&
      type != static_cast<uint8_t>(HeartbeatType::kPong))
    return std::nullopt;
  hb.type = static_cast<HeartbeatType>(type);
  if (!r.u16(hb.flags) || !r.u64(hb.incarnation) || !r.u64(hb.seq) || !r.u64(hb.echo_incarnation) ||
      !r.u64(hb.echo_seq) || !r.str(hb.cluster) || !r.str(hb.sender) || !r.str(hb.receiver))
    return std::nullopt;
  uint8_t answers = 0;
  if (!r.u8(answers) || answers > kHeartbeatAnswersMax) return std::nullopt;
  hb.answers.resize(answers);
  for (AnswerReport& a : hb.answers) {
    if (!r.u32(a.member_hash) || !r.u16(a.age_ms)) return std::nullopt;
  }
  if (r.pos() != body.size()) return std::nullopt;
  return hb;
}

}  // namespace bulwark
