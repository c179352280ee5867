#include "core/yaml_section.h"

#include <fstream>
#include <set>
#include <sstream>

namespace bulwark {

std::string yaml_where(const std::string& path, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return path;
  std::ostringstream out;
  out << path << ":" << mark.line + 1 << ":" << mark.column + 1;
  return out.str();
}

Error yaml_error(const std::string& path, const YAML::Node& node, const std::string& what) {
  return make_error(Errc::kInvalid, yaml_where(path, node) + ": " + what);
}

Result<std::string> yaml_key(const std::string& path, const YAML::Node& key) {
  if (!key.IsScalar()) return yaml_error(path, key, "keys must be plain strings");
  return key.Scalar();
}

Error yaml_exception_error(const std::string& path, const YAML::Exception& e) {
  return make_error(Errc::kInvalid, path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                        std::to_string(e.mark.column + 1) + ": " + e.msg);
}

Result<YAML::Node> yaml_load(const std::string& text, const std::string& path) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return yaml_exception_error(path, e);
  }
}

Result<std::string> read_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(Errc::kInvalid, path + ": cannot read the configuration file");
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

YamlSection::YamlSection(const std::string& path, const YAML::Node& node, std::string label,
                         const std::vector<ConfigKeyword>& table, std::string section)
    : path_(path),
      node_(node),
      label_(std::move(label)),
      table_(table),
      section_(std::move(section)) {}

Error YamlSection::error(const YAML::Node& at, const std::string& what) const {
  return yaml_error(path_, at, what);
}

YAML::Node YamlSection::at_or_self(const char* key) const {
  return node_[key] ? node_[key] : node_;
}

Status YamlSection::check_keys() const {
  if (!node_.IsMap()) return error(node_, label_ + " must be a mapping");
  std::set<std::string> allowed;
  for (const auto& k : table_) {
    if (section_ == k.section) allowed.insert(k.key);
  }
  for (const auto& item : node_) {
    auto parsed = yaml_key(path_, item.first);
    if (!parsed) return parsed.error();
    const std::string& key = *parsed;
    if (!allowed.count(key)) {
      std::string expected;
      for (const auto& a : allowed) expected += (expected.empty() ? "" : ", ") + a;
      return error(item.first, "unknown key '" + key + "' in " + label_ +
                                   " (expected one of: " + expected + ")");
    }
  }
  return Ok{};
}

Status YamlSection::require(const char* key) const {
  if (!node_[key]) return error(node_, label_ + "." + key + " is required");
  return Ok{};
}

Status YamlSection::get_string(const char* key, std::string& out) const {
  const YAML::Node v = node_[key];
  if (!v) return Ok{};
  if (!v.IsScalar()) return error(v, std::string(key) + " must be a string");
  out = v.Scalar();
  return Ok{};
}

Status YamlSection::get_int(const char* key, int& out, int min, int max) const {
  const YAML::Node v = node_[key];
  if (!v) return Ok{};
  long long parsed = 0;
  if (!v.IsScalar() || !YAML::convert<long long>::decode(v, parsed))
    return error(v, std::string(key) + " must be an integer");
  if (parsed < min || parsed > max)
    return error(v, std::string(key) + " must be between " + std::to_string(min) + " and " +
                        std::to_string(max));
  out = static_cast<int>(parsed);
  return Ok{};
}

Status YamlSection::get_bool(const char* key, bool& out) const {
  const YAML::Node v = node_[key];
  if (!v) return Ok{};
  bool parsed = false;
  if (!v.IsScalar() || !YAML::convert<bool>::decode(v, parsed))
    return error(v, std::string(key) + " must be true or false");
  out = parsed;
  return Ok{};
}

Status YamlSection::get_choice(const char* key, std::string& out,
                               const std::vector<std::string>& choices) const {
  std::string value = out;
  if (auto st = get_string(key, value); !st) return st;
  for (const auto& c : choices) {
    if (c == value) {
      out = value;
      return Ok{};
    }
  }
  std::string expected;
  for (const auto& c : choices) expected += (expected.empty() ? "" : ", ") + c;
  return error(node_[key], std::string(key) + " must be one of: " + expected);
}

Status YamlSection::get_string_list(const char* key, std::vector<std::string>& out) const {
  const YAML::Node v = node_[key];
  if (!v) return Ok{};
  if (!v.IsSequence()) return error(v, std::string(key) + " must be a list of strings");
  out.clear();
  for (const auto& item : v) {
    if (!item.IsScalar()) return error(item, std::string(key) + " must be a list of strings");
    out.push_back(item.Scalar());
  }
  return Ok{};
}

}  // namespace bulwark
