// Keeps docs/configuration.md complete: every keyword of a parser's table
// must appear, in backquotes, in that parser's part of the reference (from
// its "# Configuration reference: ..." heading to the next one).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/yaml_section.h"

namespace bulwark {

inline void expect_documented(const std::vector<ConfigKeyword>& table, const std::string& heading) {
  const std::string doc_path = std::string(BULWARK_SOURCE_DIR) + "/docs/configuration.md";
  std::ifstream in(doc_path);
  ASSERT_TRUE(in.good()) << doc_path << " cannot be read";
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string doc = buf.str();
  const auto start = doc.find(heading);
  ASSERT_NE(start, std::string::npos) << doc_path << " has no part '" << heading << "'";
  const auto end = doc.find("\n# Configuration reference", start + heading.size());
  const std::string part = doc.substr(start, end == std::string::npos ? end : end - start);
  ASSERT_FALSE(table.empty());
  for (const auto& k : table) {
    EXPECT_NE(part.find(std::string("`") + k.key + "`"), std::string::npos)
        << doc_path << " ('" << heading << "') does not document `" << k.key << "` of "
        << k.section;
  }
}

}  // namespace bulwark
