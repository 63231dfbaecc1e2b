//===- SamplerTest.cpp - shuffled, resumable training windows -------------===//
//
// The file holds ids 0, 1, 2, ... so a window is known by its first id.
//
//===----------------------------------------------------------------------===//

#include "ScratchDir.h"

#include "runtime/data/Sampler.h"
#include "runtime/data/SplitMix64.h"
#include "runtime/data/TokenFileWriter.h"

#include <numeric>
#include <set>

using namespace moert::data;
using namespace moert::data::testing;

namespace {
constexpr int64_t kSeq = 10;

SamplerOptions options(uint64_t seed, bool shuffle = true,
                       std::optional<TokenRange> range = std::nullopt) {
  SamplerOptions options;
  options.seq = kSeq;
  options.seed = seed;
  options.shuffle = shuffle;
  options.range = range;
  return options;
}

class SamplerTest : public ScratchDirTest {
protected:
  /// `tokens` ids 0..tokens-1 in two documents.
  void SetUp() override { makeFile(1001); }

  void makeFile(int32_t tokens) {
    std::vector<int32_t> ids(static_cast<size_t>(tokens));
    std::iota(ids.begin(), ids.end(), 0);
    std::string path = dir + "/counting.tok";
    ASSERT_TRUE(writeTokenFile(path, 5000, std::nullopt,
                               {{ids.begin(), ids.begin() + tokens / 3},
                                {ids.begin() + tokens / 3, ids.end()}})
                    .ok());
    absl::StatusOr<MappedTokenFile> opened = MappedTokenFile::open(path);
    ASSERT_TRUE(opened.ok()) << opened.status();
    file = std::make_unique<MappedTokenFile>(std::move(*opened));
  }

  Sampler sampler(const SamplerOptions &chosen) {
    absl::StatusOr<Sampler> made = Sampler::create(*file, chosen);
    EXPECT_TRUE(made.ok()) << made.status();
    return std::move(*made);
  }

  /// The first ids of the next `count` windows, checking each window.
  std::vector<int32_t> starts(Sampler &s, int64_t count) {
    std::vector<int32_t> ids = s.next(count);
    EXPECT_EQ(int64_t(ids.size()), count * (kSeq + 1));
    std::vector<int32_t> first;
    for (int64_t w = 0; w < count; ++w) {
      for (int64_t i = 0; i <= kSeq; ++i)
        EXPECT_EQ(ids[size_t(w * (kSeq + 1) + i)],
                  ids[size_t(w * (kSeq + 1))] + i);
      first.push_back(ids[size_t(w * (kSeq + 1))]);
    }
    return first;
  }

  std::unique_ptr<MappedTokenFile> file;
};

TEST(SplitMix64, MatchesTheReferenceOutputs) {
  // The first outputs of Vigna's splitmix64.c seeded with 1234567.
  SplitMix64 random(1234567);
  EXPECT_EQ(random.next(), 6457827717110365317ull);
  EXPECT_EQ(random.next(), 3203168211198807973ull);
  EXPECT_EQ(random.next(), 9817491932198370423ull);
}

TEST_F(SamplerTest, AnEpochCoversEachTokenAtMostOnce) {
  Sampler s = sampler(options(7));
  ASSERT_EQ(s.windowCount(), 100); // (1001 - 1) / 10
  std::vector<int32_t> first = starts(s, 100);
  std::set<int32_t> distinct(first.begin(), first.end());
  ASSERT_EQ(distinct.size(), 100u);
  for (int32_t start : distinct)
    EXPECT_EQ(start % kSeq, 0);
  // Inputs are ids [start, start + S): disjoint across the epoch.
  EXPECT_EQ(*distinct.rbegin(), 990);
  EXPECT_EQ(s.state(), (SamplerState{0, 100}));
  // Not file order, and the next epoch is shuffled differently.
  std::vector<int32_t> sorted(distinct.begin(), distinct.end());
  EXPECT_NE(first, sorted);
  std::vector<int32_t> second = starts(s, 100);
  EXPECT_EQ(s.state(), (SamplerState{1, 100}));
  EXPECT_NE(first, second);
  EXPECT_EQ(std::set<int32_t>(second.begin(), second.end()), distinct);
}

TEST_F(SamplerTest, SeedDecidesTheOrder) {
  Sampler a = sampler(options(7)), b = sampler(options(7)),
          c = sampler(options(8));
  std::vector<int32_t> first = starts(a, 250);
  EXPECT_EQ(first, starts(b, 250));
  EXPECT_NE(first, starts(c, 250));
}

TEST_F(SamplerTest, UnshuffledIsFileOrder) {
  Sampler s = sampler(options(7, /*shuffle=*/false));
  std::vector<int32_t> first = starts(s, 3);
  EXPECT_EQ(first, (std::vector<int32_t>{0, 10, 20}));
}

TEST_F(SamplerTest, ResumingDrawsTheSameBatches) {
  // Stop mid-epoch, at an epoch boundary and mid-batch across one.
  for (int64_t stop : {37, 100, 130, 195}) {
    Sampler original = sampler(options(42));
    starts(original, stop);
    SamplerState saved = original.state();
    std::vector<int32_t> expected = original.next(4 * 23);

    Sampler resumed = sampler(options(42));
    ASSERT_TRUE(resumed.restore(saved).ok());
    EXPECT_EQ(resumed.next(4 * 23), expected) << "stopped after " << stop;
    EXPECT_EQ(resumed.state(), original.state());
  }
}

TEST_F(SamplerTest, RestoreChecksTheState) {
  Sampler s = sampler(options(1));
  absl::Status bad = s.restore({0, 101});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "sampler state: position 101 is outside [0, 100] "
                           "windows of " + file->path());
  EXPECT_FALSE(s.restore({-1, 0}).ok());
  EXPECT_TRUE(s.restore({3, 100}).ok());
}

TEST_F(SamplerTest, ValidationWindowsAreDisjointFromTraining) {
  TokenSplit split = splitTokens(file->tokenCount(), 0.1);
  EXPECT_EQ(split.train.end, 901);
  EXPECT_EQ(split.validation.begin, 901);
  EXPECT_EQ(split.validation.end, 1001);
  Sampler train = sampler(options(3, true, split.train));
  Sampler validation = sampler(options(3, false, split.validation));
  std::set<int32_t> trainIds, validationIds;
  for (int32_t id : train.next(train.windowCount()))
    trainIds.insert(id);
  for (int32_t id : validation.next(validation.windowCount()))
    validationIds.insert(id);
  EXPECT_EQ(train.windowCount(), 90);
  EXPECT_EQ(validation.windowCount(), 9);
  EXPECT_EQ(*trainIds.rbegin(), 900);
  EXPECT_EQ(*validationIds.begin(), 901);
}

TEST_F(SamplerTest, TooFewTokensIsAnError) {
  makeFile(10);
  absl::StatusOr<Sampler> s = Sampler::create(*file, options(0));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            file->path() + ": 10 tokens cannot fill one window of 11 "
                           "(sequence length 10 + 1)");
}
} // namespace
