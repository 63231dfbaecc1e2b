//===- WeightShards.h - a checkpoint's weights in shards --------*- C++ -*-===//
//
// Writes the weights of a Hugging Face checkpoint directory the way
// transformers' save_pretrained lays them out: one model.safetensors, or,
// past the maximum shard size, model-00001-of-0000N.safetensors and so on
// with model.safetensors.index.json mapping every tensor to its shard.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CHECKPOINT_WEIGHTSHARDS_H
#define MOERT_CHECKPOINT_WEIGHTSHARDS_H

#include "runtime/checkpoint/Safetensors.h"

#include "absl/status/statusor.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moert {

/// save_pretrained's default maximum shard size, "5GB".
constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000;

/// A shard size as transformers writes one: "5GB" (10^9), "500MB", "2GiB"
/// (2^30), "100KB", or a plain number of bytes. 0 means no limit.
absl::StatusOr<uint64_t> parseShardSize(std::string_view text);

/// Whether `name` is one of the files a sharded checkpoint's weights use
/// (model-NNNNN-of-NNNNN.safetensors or model.safetensors.index.json).
bool isWeightShardFile(std::string_view name);

/// Streams the weights into `dir` (which must exist), tensors in the given
/// order filling shards of at most `maxShardBytes` of tensor data each (a
/// tensor larger than that gets a shard of its own; 0: no limit). Data
/// arrives as with SafetensorsStream, in order, across tensor and shard
/// boundaries. Each shard file appears complete or not at all; the index is
/// written by finish().
class WeightShardsStream {
public:
  static absl::StatusOr<std::unique_ptr<WeightShardsStream>>
  create(const std::string &dir, const std::vector<TensorToWrite> &tensors,
         uint64_t maxShardBytes,
         const std::map<std::string, std::string> &metadata = {},
         bool requireData = true);
  absl::Status append(const void *data, uint64_t bytes);
  absl::Status finish();

private:
  struct Shard {
    std::string file;
    std::vector<TensorToWrite> tensors;
    uint64_t bytes = 0;
  };
  WeightShardsStream() = default;
  absl::Status openNext();

  std::string dir_;
  std::map<std::string, std::string> metadata_;
  bool requireData_ = true;
  std::vector<Shard> shards_;
  size_t next_ = 0;        // the shard openNext() opens
  uint64_t remaining_ = 0; // bytes the open shard still expects
  std::unique_ptr<SafetensorsStream> open_;
};

/// WeightShardsStream over tensors whose data is at hand.
absl::Status
writeWeightShards(const std::string &dir,
                  const std::vector<TensorToWrite> &tensors,
                  uint64_t maxShardBytes,
                  const std::map<std::string, std::string> &metadata = {});

} // namespace moert

#endif // MOERT_CHECKPOINT_WEIGHTSHARDS_H
