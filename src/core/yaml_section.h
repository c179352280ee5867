// Reading YAML configuration with precise errors: every message starts with
// "file:line:column", and a mapping may only hold the keys its section of a
// keyword table declares. Shared by bulwark.yaml (core/config.cc) and the
// bulwark-proxy configuration (proxy/proxy_config.cc).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace bulwark {

// One row of a keyword table: the configuration reference in docs/ lists
// every row, and a test checks that it does.
struct ConfigKeyword {
  const char* section;  // e.g. "cluster", "nodes[]", "backends[].check"
  const char* key;
  const char* type;
  const char* default_value;
  const char* description;
};

// "file:line:column" of a node, or just "file" when yaml-cpp has no mark.
std::string yaml_where(const std::string& path, const YAML::Node& node);
Error yaml_error(const std::string& path, const YAML::Node& node, const std::string& what);
// Mapping keys must be plain strings: YAML also allows complex keys
// ("? [a, b]: x"), which mean nothing in a configuration.
Result<std::string> yaml_key(const std::string& path, const YAML::Node& key);
// Parses text, turning yaml-cpp's exceptions into file:line:column errors.
Result<YAML::Node> yaml_load(const std::string& text, const std::string& path);
Error yaml_exception_error(const std::string& path, const YAML::Exception& e);
// The whole text of a configuration file, or an error naming it.
Result<std::string> read_config_file(const std::string& path);

// Loads `text` and runs `parse` on its root. Parsers report errors as
// values; yaml-cpp can still throw from a lookup, and that too becomes an
// error naming the file, so that no input (a bad reload included) can end
// the process.
template <class T, class Parse>
Result<T> parse_yaml(const std::string& text, const std::string& path, Parse parse) {
  auto root = yaml_load(text, path);
  if (!root) return root.error();
  try {
    return parse(*root);
  } catch (const YAML::Exception& e) {
    return yaml_exception_error(path, e);
  } catch (const std::exception& e) {
    return make_error(Errc::kInvalid, path + ": " + e.what());
  }
}

// Reads one mapping, refusing keys that its section of the table lacks.
class YamlSection {
 public:
  // `label` names the mapping in messages ("backends[1].check"); `section`
  // is the table section its keys come from ("backends[].check").
  YamlSection(const std::string& path, const YAML::Node& node, std::string label,
              const std::vector<ConfigKeyword>& table, std::string section);

  Status check_keys() const;
  Status require(const char* key) const;
  Status get_string(const char* key, std::string& out) const;
  Status get_int(const char* key, int& out, int min, int max) const;
  Status get_bool(const char* key, bool& out) const;
  // One of `choices`; `out` keeps its value when the key is absent.
  Status get_choice(const char* key, std::string& out,
                    const std::vector<std::string>& choices) const;
  Status get_string_list(const char* key, std::vector<std::string>& out) const;

  const YAML::Node& node() const { return node_; }
  YAML::Node operator[](const char* key) const { return node_[key]; }
  const std::string& label() const { return label_; }
  const std::string& path() const { return path_; }
  Error error(const YAML::Node& at, const std::string& what) const;
  // The value at `key` if present, else the mapping itself: where to point
  // an error about a key that may be absent.
  YAML::Node at_or_self(const char* key) const;

 private:
  const std::string& path_;
  YAML::Node node_;
  std::string label_;
  const std::vector<ConfigKeyword>& table_;
  std::string section_;
};

}  // namespace bulwark
