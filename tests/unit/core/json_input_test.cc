// JSON from outside the process: a number no integer can hold refuses the
// document, anywhere in it; everything else parses as nlohmann parses it.
#include "core/json_input.h"

#include <gtest/gtest.h>

namespace bulwark {
namespace {

TEST(JsonInputTest, ANumberNoIntegerHoldsRefusesTheDocument) {
  for (const char* text : {R"({"epoch": 1e69})", R"({"a": [1, {"b": -1e19}]})", R"([9.3e18])",
                           R"({"epoch": 1e999})"}) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(parse_json_input(text).is_discarded());
  }
}

TEST(JsonInputTest, IntegersStringsAndFloatsInRangeParse) {
  const nlohmann::json j =
      parse_json_input(R"({"epoch": 9223372036854775807, "low": -9223372036854775808,
                           "big": 18446744073709551615, "ms": 2.5, "s": "1e69"})");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j.at("epoch").get<int64_t>(), INT64_MAX);
  EXPECT_EQ(j.at("low").get<int64_t>(), INT64_MIN);
  EXPECT_EQ(j.at("big").get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(j.at("ms").get<int64_t>(), 2);
  EXPECT_EQ(j.at("s").get<std::string>(), "1e69");
}

TEST(JsonInputTest, TextThatIsNotJsonIsDiscarded) {
  EXPECT_TRUE(parse_json_input("not json").is_discarded());
  EXPECT_TRUE(parse_json_input("").is_discarded());
}

}  // namespace
}  // namespace bulwark
