//===- HfCheckpoint.cpp - a Hugging Face checkpoint directory -------------===//

#include "runtime/checkpoint/HfCheckpoint.h"

#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace moert {

absl::StatusOr<HfCheckpoint> HfCheckpoint::open(const std::string &dir) {
  namespace fs = std::filesystem;
  HfCheckpoint checkpoint;
  std::string single = dir + "/model.safetensors";
  std::string indexPath = dir + "/model.safetensors.index.json";
  std::vector<std::string> shards;
  std::map<std::string, std::string> expected; // tensor -> shard (index only)
  if (fs::exists(single)) {
    shards.push_back("model.safetensors");
  } else if (fs::exists(indexPath)) {
    std::ifstream in(indexPath);
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception &error) {
      return absl::InvalidArgumentError(
          absl::StrCat(indexPath, ": malformed JSON: ", error.what()));
    }
    if (!index.is_object() || !index.contains("weight_map") ||
        !index["weight_map"].is_object())
      return absl::InvalidArgumentError(
          absl::StrCat(indexPath, ": field 'weight_map' must be an object"));
    for (auto &[tensor, shard] : index["weight_map"].items()) {
      if (!shard.is_string())
        return absl::InvalidArgumentError(absl::StrCat(
            indexPath, ": weight_map '", tensor, "' is not a file name"));
      std::string file = shard.get<std::string>();
      if (file.find('/') != std::string::npos)
        return absl::InvalidArgumentError(absl::StrCat(
            indexPath, ": weight_map '", tensor, "' points outside the "
            "directory: ", file));
      expected[tensor] = file;
      if (std::find(shards.begin(), shards.end(), file) == shards.end())
        shards.push_back(file);
    }
  } else {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no model.safetensors or model.safetensors.index.json"));
  }

  for (const std::string &shard : shards) {
    absl::StatusOr<SafetensorsFile> file =
        SafetensorsFile::open(dir + "/" + shard);
    if (!file.ok())
      return file.status();
    checkpoint.files_.push_back(std::move(*file));
  }
  for (size_t f = 0; f < checkpoint.files_.size(); ++f)
    for (const TensorView &tensor : checkpoint.files_[f].tensors()) {
      auto [it, inserted] =
          checkpoint.index_.try_emplace(tensor.name, f, &tensor);
      if (!inserted)
        return absl::InvalidArgumentError(absl::StrCat(
            dir, ": tensor '", tensor.name, "' is in both ",
            checkpoint.files_[it->second.first].path(), " and ",
            checkpoint.files_[f].path()));
      if (!expected.empty()) {
        auto listed = expected.find(tensor.name);
        if (listed == expected.end() || dir + "/" + listed->second !=
                                            checkpoint.files_[f].path())
          return absl::InvalidArgumentError(absl::StrCat(
              checkpoint.files_[f].path(), ": tensor '", tensor.name,
              "' is not listed for this file in model.safetensors.index.json"));
      }
    }
  for (const auto &[tensor, shard] : expected)
    if (!checkpoint.index_.count(tensor))
      return absl::InvalidArgumentError(
          absl::StrCat(dir, "/", shard, ": tensor '", tensor,
                       "' is listed in the index but not in the file"));
  return checkpoint;
}

const TensorView *HfCheckpoint::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.second;
}

std::vector<std::string> HfCheckpoint::names() const {
  std::vector<std::string> names;
  for (const auto &[name, where] : index_)
    names.push_back(name);
  return names;
}

std::string HfCheckpoint::describe(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? std::string(name)
                            : files_[it->second.first].path();
}

} // namespace moert
