//===- JsonDepthTest.cpp - the nesting bound every JSON input passes ------===//

#include "runtime/base/JsonDepth.h"

#include <gtest/gtest.h>

#include <string>

namespace moert {
namespace {

std::string nested(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(JsonDepth, AllowsTheBoundAndRefusesOneMore) {
  EXPECT_EQ(findJsonTooDeep(nested(kMaxJsonDepth)), std::string::npos);
  EXPECT_EQ(findJsonTooDeep(nested(kMaxJsonDepth + 1)), size_t(kMaxJsonDepth));
  // Objects and arrays count alike; siblings do not add up.
  std::string sixtyFour = "{\"a\": " + nested(kMaxJsonDepth - 1) + "}";
  EXPECT_EQ(findJsonTooDeep(sixtyFour + sixtyFour), std::string::npos);
}

TEST(JsonDepth, BracketsInStringsDoNotCount) {
  std::string brackets(1000, '[');
  EXPECT_EQ(findJsonTooDeep("{\"" + brackets + "\": 1}"), std::string::npos);
  // An escaped quote does not end the string.
  EXPECT_EQ(findJsonTooDeep("[\"\\\"" + brackets + "\"]"), std::string::npos);
  // An escaped backslash does.
  EXPECT_NE(findJsonTooDeep("[\"\\\\\" " + brackets + "]"), std::string::npos);
}

} // namespace
} // namespace moert
