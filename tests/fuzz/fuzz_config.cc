// bulwark.yaml and the resources file are operator input: any bytes must
// give either a configuration or an error naming file:line:column, never a
// crash or a hang. (One target for both: they share the YAML reader.)
#include <cstddef>
#include <cstdint>
#include <string>

#include "classes/registry/agent_classes.h"
#include "core/config.h"
#include "core/resource_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto r = bulwark::parse_config(text, "/fuzz/bulwark.yaml");
  if (!r.ok()) {
    // Every refusal names the file it refers to.
    if (r.error().message.rfind("/fuzz/bulwark.yaml", 0) != 0) __builtin_trap();
  } else {
    // A config that parses renders to one that parses again to the same nodes.
    auto again = bulwark::parse_config(bulwark::render_config(*r), "/fuzz/bulwark.yaml");
    if (!again.ok() || again->nodes.size() != r->nodes.size()) __builtin_trap();
  }
  auto resources =
      bulwark::parse_resource_config(text, "/fuzz/resources.yaml", bulwark::agent_class_syntaxes());
  if (!resources.ok() && resources.error().message.rfind("/fuzz/resources.yaml", 0) != 0)
    __builtin_trap();
  return 0;
}
