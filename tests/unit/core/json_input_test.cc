// JSON from outside the process: a number no integer can hold refuses the
// document, anywhere in it; other floats become integers; depth is no
// danger.
#include "core/json_input.h"

#include <gtest/gtest.h>

#include <string>

namespace bulwark {
namespace {

TEST(JsonInputTest, ANumberNoIntegerHoldsRefusesTheDocument) {
  for (const char* text : {R"({"epoch": 1e69})", R"({"a": [1, {"b": -1e19}]})", R"([9.3e18])",
                           R"({"epoch": 1e999})", R"([9223372036854775808.0])"}) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(parse_json_input(text).is_discarded());
  }
}

TEST(JsonInputTest, IntegersAndStringsParseAndFloatsBecomeIntegers) {
  const nlohmann::json j = parse_json_input(
      R"({"epoch": 9223372036854775807, "low": -9223372036854775808, "big": 18446744073709551615,
          "ms": 2.5, "count": -1.0, "edge": -9223372036854775808.0, "s": "1e69"})");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j.at("epoch").get<int64_t>(), INT64_MAX);
  EXPECT_EQ(j.at("low").get<int64_t>(), INT64_MIN);
  EXPECT_EQ(j.at("big").get<uint64_t>(), UINT64_MAX);
  EXPECT_TRUE(j.at("ms").is_number_integer());
  EXPECT_EQ(j.at("ms").get<int64_t>(), 2);
  // An integer now: read as unsigned it wraps (defined), where a double
  // -1.0 read as uint64_t was undefined.
  EXPECT_EQ(j.at("count").get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(j.at("edge").get<int64_t>(), INT64_MIN);
  EXPECT_EQ(j.at("s").get<std::string>(), "1e69");
}

TEST(JsonInputTest, DeepNestingIsNoDanger) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_FALSE(parse_json_input(deep).is_discarded());
}

TEST(JsonInputTest, TextThatIsNotJsonIsDiscarded) {
  EXPECT_TRUE(parse_json_input("not json").is_discarded());
  EXPECT_TRUE(parse_json_input("").is_discarded());
}

}  // namespace
}  // namespace bulwark
