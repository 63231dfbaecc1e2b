//===- WeightShardsTest.cpp - weights written in shards -------------------===//
//
// What is written is read back through HfCheckpoint, the reader of sharded
// directories, and compared with what went in.

#include "runtime/checkpoint/WeightShards.h"
#include "runtime/checkpoint/HfCheckpoint.h"
#include "tests/runtime/TestDirs.h"

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

using namespace moert;
using namespace moert::testing;

namespace {
class WeightShardsTest : public ScratchDirTest {
protected:
  /// a: 3 floats, b: 5, c: 1, d: 0 (empty), e: 4.
  std::vector<TensorToWrite> tensors() const {
    return {{"a", DType::kF32, {3}, values},
            {"b", DType::kF32, {5}, values + 3},
            {"c", DType::kF32, {1}, values + 8},
            {"d", DType::kF32, {0}, nullptr},
            {"e", DType::kF32, {2, 2}, values + 9}};
  }

  /// Every tensor reads back with its values.
  void expectReadsBack() {
    absl::StatusOr<HfCheckpoint> checkpoint = HfCheckpoint::open(dir);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    for (const TensorToWrite &tensor : tensors()) {
      const TensorView *view = checkpoint->find(tensor.name);
      ASSERT_NE(view, nullptr) << tensor.name;
      size_t bytes = 4;
      for (int64_t extent : tensor.shape)
        bytes *= size_t(extent);
      ASSERT_EQ(view->bytes, bytes) << tensor.name;
      if (bytes > 0) {
        EXPECT_EQ(std::memcmp(view->data, tensor.data, bytes), 0)
            << tensor.name;
      }
    }
    EXPECT_EQ(checkpoint->names().size(), tensors().size());
  }

  nlohmann::json index() const {
    std::ifstream in(dir + "/model.safetensors.index.json");
    return nlohmann::json::parse(in);
  }

  float values[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
};

TEST_F(WeightShardsTest, OneFileWithoutALimitOrUnderIt) {
  for (uint64_t limit : {uint64_t(0), uint64_t(1000)}) {
    ASSERT_TRUE(writeWeightShards(dir, tensors(), limit).ok());
    EXPECT_EQ(listDir(), std::vector<std::string>{"model.safetensors"});
    expectReadsBack();
    std::filesystem::remove(dir + "/model.safetensors");
  }
}

TEST_F(WeightShardsTest, ShardsFillGreedilyInOrderAndTheIndexMapsThem) {
  // 24 bytes at most: a (12) + b (20) exceed it, so b starts a shard; c, d
  // join b (24 bytes); e (16) starts the third.
  ASSERT_TRUE(writeWeightShards(dir, tensors(), 24).ok());
  EXPECT_EQ(listDir(),
            (std::vector<std::string>{"model-00001-of-00003.safetensors",
                                      "model-00002-of-00003.safetensors",
                                      "model-00003-of-00003.safetensors",
                                      "model.safetensors.index.json"}));
  nlohmann::json json = index();
  EXPECT_EQ(json["metadata"]["total_size"], 52);
  EXPECT_EQ(json["weight_map"]["a"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(json["weight_map"]["b"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(json["weight_map"]["c"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(json["weight_map"]["d"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(json["weight_map"]["e"], "model-00003-of-00003.safetensors");
  expectReadsBack();
}

TEST_F(WeightShardsTest, ATensorLargerThanTheLimitGetsAShardOfItsOwn) {
  ASSERT_TRUE(writeWeightShards(dir, tensors(), 8).ok());
  nlohmann::json json = index();
  EXPECT_EQ(json["weight_map"]["a"], "model-00001-of-00004.safetensors");
  EXPECT_EQ(json["weight_map"]["b"], "model-00002-of-00004.safetensors");
  EXPECT_EQ(json["weight_map"]["c"], "model-00003-of-00004.safetensors");
  EXPECT_EQ(json["weight_map"]["e"], "model-00004-of-00004.safetensors");
  expectReadsBack();
}

TEST_F(WeightShardsTest, DataMayArriveAcrossTensorAndShardBoundaries) {
  absl::StatusOr<std::unique_ptr<WeightShardsStream>> stream =
      WeightShardsStream::create(dir, tensors(), 24, {}, /*requireData=*/false);
  ASSERT_TRUE(stream.ok()) << stream.status();
  // 52 bytes in pieces of 7, 30 and 15: across a/b, b/c and the shards.
  const uint8_t *bytes = reinterpret_cast<const uint8_t *>(values);
  ASSERT_TRUE((*stream)->append(bytes, 7).ok());
  ASSERT_TRUE((*stream)->append(bytes + 7, 30).ok());
  ASSERT_TRUE((*stream)->append(bytes + 37, 15).ok());
  ASSERT_TRUE((*stream)->finish().ok());
  expectReadsBack();
}

TEST_F(WeightShardsTest,
       TooMuchOrTooLittleDataIsAnErrorAndLeavesNoPartialFile) {
  {
    absl::StatusOr<std::unique_ptr<WeightShardsStream>> stream =
        WeightShardsStream::create(dir, tensors(), 24, {}, false);
    ASSERT_TRUE(stream.ok());
    absl::Status status = (*stream)->append(values, 56);
    EXPECT_FALSE(status.ok());
    EXPECT_NE(status.message().find("more tensor data than the header"),
              std::string::npos)
        << status;
  }
  {
    absl::StatusOr<std::unique_ptr<WeightShardsStream>> stream =
        WeightShardsStream::create(dir + "/", tensors(), 0, {}, false);
    ASSERT_TRUE(stream.ok());
    ASSERT_TRUE((*stream)->append(values, 8).ok());
    EXPECT_FALSE((*stream)->finish().ok());
  }
  // Shards filled before the error stay (the checkpoint directory they are
  // staged in goes as a whole); no partial file, no index.
  for (const std::string &name : listDir()) {
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
    EXPECT_TRUE(isWeightShardFile(name)) << name;
    EXPECT_NE(name, "model.safetensors.index.json");
  }
}

TEST(ShardSizeTest, TransformersUnits) {
  EXPECT_EQ(*parseShardSize("5GB"), 5'000'000'000u);
  EXPECT_EQ(*parseShardSize("500MB"), 500'000'000u);
  EXPECT_EQ(*parseShardSize("100kb"), 100'000u);
  EXPECT_EQ(*parseShardSize("2GiB"), uint64_t(2) << 30);
  EXPECT_EQ(*parseShardSize("3MiB"), uint64_t(3) << 20);
  EXPECT_EQ(*parseShardSize("1KiB"), 1024u);
  EXPECT_EQ(*parseShardSize("123"), 123u);
  EXPECT_EQ(*parseShardSize("7B"), 7u);
  EXPECT_EQ(*parseShardSize("0"), 0u);
  for (const char *bad : {"", "GB", "5XB", "-1", "1.5GB", "99999999999GB"})
    EXPECT_FALSE(parseShardSize(bad).ok()) << bad;
}

TEST(ShardSizeTest, ShardFileNames) {
  EXPECT_TRUE(isWeightShardFile("model-00001-of-00003.safetensors"));
  EXPECT_TRUE(isWeightShardFile("model.safetensors.index.json"));
  EXPECT_FALSE(isWeightShardFile("model-1-of-3.safetensors"));
  EXPECT_FALSE(isWeightShardFile("notes.txt"));
}
} // namespace
