//===- PhiloxTest.cpp - the generator and the name hash, known answers ----===//

#include "runtime/checkpoint/Init.h"

#include <gtest/gtest.h>

using namespace moert;

namespace {
using Block = std::array<uint32_t, 4>;

// Philox4x32-10 vectors published with Random123 (kat_vectors).
TEST(Philox, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(philox4x32({0, 0, 0, 0}, {0, 0}),
            (Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                       {0xffffffff, 0xffffffff}),
            (Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                       {0xa4093822, 0x299f31d0}),
            (Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, NeighbouringCountersAndKeysDiffer) {
  Block base = philox4x32({7, 0, 0, 0}, {1, 2});
  EXPECT_NE(base, philox4x32({8, 0, 0, 0}, {1, 2}));
  EXPECT_NE(base, philox4x32({7, 0, 0, 0}, {1, 3}));
  EXPECT_NE(base, philox4x32({7, 0, 0, 1}, {1, 2}));
}

// FNV-1a 64 reference values (the offset basis for "", and the published
// test vectors for "a" and "foobar").
TEST(Philox, NameKeysAreFnv1a64) {
  EXPECT_EQ(keyOf(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(keyOf("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(keyOf("foobar"), 0x85944171f73967e8ull);
  EXPECT_NE(keyOf("layers.0.w1"), keyOf("layers.0.w2"));
}
} // namespace
