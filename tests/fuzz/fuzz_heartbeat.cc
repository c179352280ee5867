// Heartbeats arrive from the network: a datagram must either decode (only
// with the right key) or be dropped, whatever its bytes. The fuzzer also
// feeds the bytes, re-tagged with the right key, to check the field parser
// behind the tag.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "membership/heartbeat.h"
#include "security/crypto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kKey = "fuzzing-secret-0123456789abcdef";
  static bulwark::HmacSha256 mac(
      std::span(reinterpret_cast<const uint8_t*>(kKey.data()), kKey.size()));
  const std::span<const uint8_t> in(data, size);
  (void)bulwark::decode_heartbeat(in, mac);
  // Re-tag so that the parser behind the authentication is exercised too.
  std::vector<uint8_t> tagged(data, data + size);
  const auto tag = mac.digest(tagged);
  tagged.insert(tagged.end(), tag.begin(), tag.end());
  if (auto hb = bulwark::decode_heartbeat(tagged, mac)) {
    const auto again = bulwark::encode_heartbeat(*hb, mac);
    if (again != tagged) __builtin_trap();  // the format has one encoding
  }
  return 0;
}
