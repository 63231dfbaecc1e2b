//===- WeightShards.cpp - a checkpoint's weights in shards ----------------===//

#include "runtime/checkpoint/WeightShards.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

namespace moert {
namespace {
uint64_t bytesOf(const TensorToWrite &tensor) {
  uint64_t bytes = dtypeSize(tensor.dtype);
  for (int64_t extent : tensor.shape)
    bytes *= uint64_t(std::max<int64_t>(extent, 0));
  return bytes;
}
} // namespace

absl::StatusOr<uint64_t> parseShardSize(std::string_view view) {
  std::string text(view);
  static const std::pair<const char *, uint64_t> kUnits[] = {
      {"GIB", uint64_t(1) << 30},
      {"MIB", uint64_t(1) << 20},
      {"KIB", uint64_t(1) << 10},
      {"GB", 1'000'000'000},
      {"MB", 1'000'000},
      {"KB", 1'000},
      {"B", 1}};
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  uint64_t unit = 1;
  for (const auto &[suffix, size] : kUnits)
    if (absl::EndsWith(upper, suffix)) {
      upper.resize(upper.size() - std::string_view(suffix).size());
      unit = size;
      break;
    }
  uint64_t count = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(upper), &count) ||
      (unit > 1 && count > UINT64_MAX / unit))
    return absl::InvalidArgumentError(absl::StrCat(
        "shard size '", text,
        "' is not a number of bytes, KB, MB, GB, KiB, MiB or GiB"));
  return count * unit;
}

bool isWeightShardFile(std::string_view name) {
  // model-NNNNN-of-NNNNN.safetensors
  auto digits = [&](size_t at) {
    return std::all_of(name.begin() + at, name.begin() + at + 5,
                       [](char c) { return c >= '0' && c <= '9'; });
  };
  return name == "model.safetensors.index.json" ||
         (name.size() == 32 && name.substr(0, 6) == "model-" && digits(6) &&
          name.substr(11, 4) == "-of-" && digits(15) &&
          name.substr(20) == ".safetensors");
}

absl::StatusOr<std::unique_ptr<WeightShardsStream>> WeightShardsStream::create(
    const std::string &dir, const std::vector<TensorToWrite> &tensors,
    uint64_t maxShardBytes, const std::map<std::string, std::string> &metadata,
    bool requireData) {
  std::unique_ptr<WeightShardsStream> stream(new WeightShardsStream());
  stream->dir_ = dir;
  stream->metadata_ = metadata;
  stream->requireData_ = requireData;
  // Greedy in order, as save_pretrained shards.
  std::vector<Shard> &shards = stream->shards_;
  for (const TensorToWrite &tensor : tensors) {
    uint64_t bytes = bytesOf(tensor);
    if (shards.empty() ||
        (maxShardBytes > 0 && !shards.back().tensors.empty() &&
         shards.back().bytes + bytes > maxShardBytes))
      shards.emplace_back();
    shards.back().tensors.push_back(tensor);
    shards.back().bytes += bytes;
  }
  if (shards.empty())
    shards.emplace_back();
  for (size_t i = 0; i < shards.size(); ++i)
    shards[i].file = shards.size() == 1
                         ? "model.safetensors"
                         : absl::StrFormat("model-%05d-of-%05d.safetensors",
                                           i + 1, shards.size());
  if (absl::Status status = stream->openNext(); !status.ok())
    return status;
  return stream;
}

absl::Status WeightShardsStream::openNext() {
  const Shard &shard = shards_[next_++];
  absl::StatusOr<std::unique_ptr<SafetensorsStream>> opened =
      SafetensorsStream::create(dir_ + "/" + shard.file, shard.tensors,
                                metadata_, requireData_);
  if (!opened.ok())
    return opened.status();
  open_ = std::move(*opened);
  remaining_ = shard.bytes;
  return absl::OkStatus();
}

absl::Status WeightShardsStream::append(const void *data, uint64_t bytes) {
  const uint8_t *next = static_cast<const uint8_t *>(data);
  while (bytes > 0) {
    // A full shard is finished and the next one opened before more data.
    if (remaining_ == 0 && next_ < shards_.size()) {
      if (absl::Status status = open_->finish(); !status.ok())
        return status;
      if (absl::Status status = openNext(); !status.ok())
        return status;
      continue;
    }
    uint64_t piece = std::min(bytes, remaining_);
    if (piece == 0) // past the last shard: let it report the excess
      piece = bytes;
    if (absl::Status status = open_->append(next, piece); !status.ok())
      return status;
    next += piece;
    bytes -= piece;
    remaining_ -= std::min(remaining_, piece);
  }
  return absl::OkStatus();
}

absl::Status WeightShardsStream::finish() {
  // Shards after the open one can only be empty of data (zero-size tensors).
  while (true) {
    if (absl::Status status = open_->finish(); !status.ok())
      return status;
    if (next_ == shards_.size())
      break;
    if (absl::Status status = openNext(); !status.ok())
      return status;
  }
  if (shards_.size() == 1)
    return absl::OkStatus();
  nlohmann::ordered_json index;
  uint64_t total = 0;
  for (const Shard &shard : shards_) {
    total += shard.bytes;
    for (const TensorToWrite &tensor : shard.tensors)
      index["weight_map"][tensor.name] = shard.file;
  }
  index["metadata"]["total_size"] = total;
  std::string path = dir_ + "/model.safetensors.index.json";
  std::ofstream out(path);
  out << index.dump(2) << "\n";
  if (!out.flush())
    return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::Status
writeWeightShards(const std::string &dir,
                  const std::vector<TensorToWrite> &tensors,
                  uint64_t maxShardBytes,
                  const std::map<std::string, std::string> &metadata) {
  absl::StatusOr<std::unique_ptr<WeightShardsStream>> stream =
      WeightShardsStream::create(dir, tensors, maxShardBytes, metadata);
  if (!stream.ok())
    return stream.status();
  for (const TensorToWrite &tensor : tensors)
    if (absl::Status status = (*stream)->append(tensor.data, bytesOf(tensor));
        !status.ok())
      return status;
  return (*stream)->finish();
}

} // namespace moert
