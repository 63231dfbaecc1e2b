//===- PrintableTest.cpp - what every tool's error messages pass through --===//

#include "runtime/base/Printable.h"

#include <gtest/gtest.h>

#include <string>

namespace moert {
namespace {

TEST(Printable, KeepsTextAndValidUtf8) {
  EXPECT_EQ(printable(std::string_view("model.norm.weight: [2, 32]")),
            "model.norm.weight: [2, 32]");
  // é (2 bytes), € (3), 😀 (4).
  std::string utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  EXPECT_EQ(printable(std::string_view(utf8)), utf8);
}

TEST(Printable, EscapesControlCharactersAndInvalidUtf8) {
  EXPECT_EQ(printable(std::string_view("a\x1b[2J\n\tb\x7f")),
            "a\\x1b[2J\\x0a\\x09b\\x7f");
  // A lone continuation byte, a truncated sequence, an overlong '/', a
  // surrogate and a value past U+10FFFF.
  EXPECT_EQ(printable(std::string_view("\x80|\xc3|\xc0\xaf|\xed\xa0\x80|"
                                       "\xf4\x90\x80\x80")),
            "\\x80|\\xc3|\\xc0\\xaf|\\xed\\xa0\\x80|\\xf4\\x90\\x80\\x80");
  std::string nul("a\0b", 3);
  EXPECT_EQ(printable(std::string_view(nul)), "a\\x00b");
}

TEST(Printable, CutsLongMessagesSayingHowMuch) {
  std::string out = printable(std::string_view(std::string(5000, 'x')));
  EXPECT_EQ(out, std::string(kMaxMessageBytes, 'x') + "... (" +
                     std::to_string(5000 - kMaxMessageBytes) + " more bytes)");
}

} // namespace
} // namespace moert
