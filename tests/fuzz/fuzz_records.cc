// Records read back from etcd are decoded strictly: any value yields a record
// or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "store/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string value(reinterpret_cast<const char*>(data), size);
  (void)bulwark::Schema::decode_node(value);
  (void)bulwark::Schema::decode_coordinator(value);
  (void)bulwark::Schema::decode_liveness(value);
  bulwark::Schema schema("/bulwark/f");
  std::map<std::string, bulwark::KeyValue> kvs;
  for (const char* key : {"/bulwark/f/schema", "/bulwark/f/nodes/n1", "/bulwark/f/coordinator",
                          "/bulwark/f/liveness"}) {
    kvs[key] = bulwark::KeyValue{key, value, 1, 1, 1};
  }
  (void)schema.build_state(kvs, 1);
  return 0;
}
