//===- HfCheckpoint.cpp - a Hugging Face checkpoint directory -------------===//

#include "runtime/base/JsonDepth.h"
#include "runtime/base/ReadFile.h"
#include "runtime/checkpoint/HfCheckpoint.h"
#include "runtime/checkpoint/WeightShards.h"

#include "runtime/checkpoint/Messages.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

namespace moert {
using checkpoint_messages::quotedName;

namespace {
namespace fs = std::filesystem;

/// model.safetensors.index.json: shard files in first-mention order and the
/// shard each tensor is listed in.
struct ShardIndex {
  std::vector<std::string> shards;
  std::map<std::string, std::string> shardOf;
};

absl::StatusOr<ShardIndex> readIndex(const std::string &dir,
                                     const std::string &indexPath) {
  absl::StatusOr<std::string> text = readFile(indexPath, "the shard index");
  if (!text.ok())
    return text.status();
  if (findJsonTooDeep(*text) != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(
        indexPath, ": malformed JSON: nested deeper than ", kMaxJsonDepth,
        " levels"));
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception &error) {
    return absl::InvalidArgumentError(
        absl::StrCat(indexPath, ": malformed JSON: ", error.what()));
  }
  if (!index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object())
    return absl::InvalidArgumentError(
        absl::StrCat(indexPath, ": field 'weight_map' must be an object"));

  ShardIndex result;
  for (const auto &[tensor, shard] : index["weight_map"].items()) {
    std::string where = absl::StrCat(indexPath, ": weight_map tensor ",
                                     quotedName(tensor), ": ");
    if (!shard.is_string())
      return absl::InvalidArgumentError(where + "shard is not a file name");
    std::string file = shard.get<std::string>();
    // Shards live in the directory itself: no paths, no escaping it.
    if (file.empty() || file == "." || file == ".." ||
        file.find('/') != std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat(where, "shard ",
                                                     quotedName(file),
                                                     " is not a file name "
                                                     "in the directory"));
    std::error_code error;
    if (!fs::is_regular_file(dir + "/" + file, error))
      return absl::NotFoundError(absl::StrCat(where, "shard ", quotedName(file),
                                              " does not exist in ", dir));
    result.shardOf[tensor] = file;
    if (std::find(result.shards.begin(), result.shards.end(), file) ==
        result.shards.end())
      result.shards.push_back(file);
  }
  return result;
}
} // namespace

absl::StatusOr<HfCheckpoint> HfCheckpoint::open(const std::string &dir) {
  std::string single = dir + "/model.safetensors";
  std::string indexPath = dir + "/model.safetensors.index.json";
  std::error_code error;
  ShardIndex index;
  bool indexed = false;
  if (fs::exists(single, error)) {
    index.shards.push_back("model.safetensors");
  } else if (fs::exists(indexPath, error)) {
    absl::StatusOr<ShardIndex> read = readIndex(dir, indexPath);
    if (!read.ok())
      return read.status();
    index = std::move(*read);
    indexed = true;
  } else {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no model.safetensors or model.safetensors.index.json"));
  }

  HfCheckpoint checkpoint;
  for (const std::string &shard : index.shards) {
    absl::StatusOr<SafetensorsFile> file =
        SafetensorsFile::open(dir + "/" + shard);
    if (!file.ok())
      return file.status();
    checkpoint.files_.push_back(std::move(*file));
  }
  // Views keep their addresses when files_ moves (vectors move their
  // buffers), so the index may point at them.
  for (size_t f = 0; f < checkpoint.files_.size(); ++f)
    for (const TensorView &tensor : checkpoint.files_[f].tensors()) {
      auto [it, inserted] =
          checkpoint.index_.try_emplace(tensor.name, f, &tensor);
      if (!inserted)
        return absl::InvalidArgumentError(absl::StrCat(
            dir, ": tensor ", quotedName(tensor.name), " is in both ",
            checkpoint.files_[it->second.first].path(), " and ",
            checkpoint.files_[f].path()));
    }
  if (!indexed)
    return checkpoint;

  for (const auto &[name, where] : checkpoint.index_) {
    auto listed = index.shardOf.find(name);
    if (listed == index.shardOf.end() ||
        index.shards[where.first] != listed->second)
      return absl::InvalidArgumentError(absl::StrCat(
          checkpoint.files_[where.first].path(), ": tensor ", quotedName(name),
          listed == index.shardOf.end()
              ? " is not listed in model.safetensors.index.json"
              : absl::StrCat(" is listed in model.safetensors.index.json "
                             "for ",
                             listed->second)));
  }
  for (const auto &[tensor, shard] : index.shardOf)
    if (!checkpoint.index_.count(tensor))
      return absl::InvalidArgumentError(
          absl::StrCat(dir, "/", shard, ": tensor ", quotedName(tensor),
                       " is listed in the index but not in the file"));
  return checkpoint;
}

const TensorView *HfCheckpoint::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.second;
}

std::vector<std::string> HfCheckpoint::names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto &[name, where] : index_)
    names.push_back(name);
  return names;
}

std::string HfCheckpoint::describe(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? std::string(name)
                            : files_[it->second.first].path();
}

absl::Status writeCheckpointDirectory(
    const std::string &dir, const std::string &configJson,
    const std::function<absl::Status(const std::string &staging)>
        &writeTensors) {
  namespace fs = std::filesystem;
  if (absl::Status status = checkReplaceable(dir); !status.ok())
    return status;
  std::string staging = absl::StrCat(dir, ".tmp-", getpid());
  std::error_code error;
  fs::remove_all(staging, error);
  if (!fs::create_directories(staging, error))
    return absl::InternalError(
        absl::StrCat(staging, ": cannot create: ", error.message()));
  auto fail = [&](absl::Status status) {
    fs::remove_all(staging, error);
    return status;
  };
  if (absl::Status status = writeTensors(staging); !status.ok())
    return fail(status);
  {
    std::ofstream config(staging + "/config.json");
    config << configJson << "\n";
    if (!config.flush())
      return fail(absl::InternalError(
          absl::StrCat(staging, "/config.json: write failed")));
  }
  if (fs::exists(dir, error)) {
    // A run directory's periodic checkpoints go over to its replacement.
    for (const fs::directory_entry &entry : fs::directory_iterator(dir, error)) {
      std::string name = entry.path().filename().string();
      if (isPeriodicCheckpointName(name))
        fs::rename(entry.path(), fs::path(staging) / name, error);
      else if (isPeriodicCheckpointName(name, /*staging=*/true))
        fs::remove_all(entry.path(), error); // left by a killed save
      if (error)
        return fail(absl::InternalError(absl::StrCat(
            entry.path().string(), ": cannot carry it over: ", error.message())));
    }
    // Swap the two in one step, so that a kill leaves a complete
    // checkpoint at `dir` whenever it stops; then the previous one goes.
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(),
                    RENAME_EXCHANGE) == 0) {
      fs::remove_all(staging, error);
      return absl::OkStatus();
    }
    if (errno != EINVAL && errno != ENOSYS)
      return fail(absl::InternalError(absl::StrCat(
          dir, ": cannot move the checkpoint into place: ",
          std::strerror(errno))));
    // A file system without the exchange: the previous checkpoint moves
    // aside first (a kill between the two renames leaves it, complete, at
    // `dir`.old-PID).
    std::string previous = absl::StrCat(dir, ".old-", getpid());
    if (fs::rename(dir, previous, error); error)
      return fail(absl::InternalError(absl::StrCat(
          dir, ": cannot move the previous checkpoint aside: ", error.message())));
    if (fs::rename(staging, dir, error); error) {
      std::error_code restoreError;
      fs::rename(previous, dir, restoreError);
      return fail(absl::InternalError(absl::StrCat(
          dir, ": cannot move the checkpoint into place: ", error.message())));
    }
    fs::remove_all(previous, error);
    return absl::OkStatus();
  }
  fs::rename(staging, dir, error);
  if (error)
    return fail(absl::InternalError(absl::StrCat(
        dir, ": cannot move the checkpoint into place: ", error.message())));
  return absl::OkStatus();
}

bool isPeriodicCheckpointName(std::string_view name, bool staging) {
  constexpr std::string_view prefix = "checkpoint-";
  if (name.substr(0, prefix.size()) != prefix)
    return false;
  name.remove_prefix(prefix.size());
  size_t digits = 0;
  while (digits < name.size() && std::isdigit(static_cast<unsigned char>(name[digits])))
    ++digits;
  if (digits == 0)
    return false;
  name.remove_prefix(digits);
  if (!staging)
    return name.empty();
  return name.substr(0, 5) == ".tmp-" || name.substr(0, 5) == ".old-";
}

absl::Status checkReplaceable(const std::string &dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::exists(dir, error))
    return absl::OkStatus();
  if (!fs::is_directory(dir, error))
    return absl::AlreadyExistsError(
        absl::StrCat(dir, ": exists and is not a directory; not replacing it"));
  static const std::set<std::string> ours = {
      "config.json",        "model.safetensors", "optimizer.safetensors",
      "trainer_state.json", "metrics.jsonl",     "loss.svg"};
  for (const fs::directory_entry &entry : fs::directory_iterator(dir, error))
    if (std::string name = entry.path().filename().string();
        !ours.count(name) && !isWeightShardFile(name) &&
        !isPeriodicCheckpointName(name) &&
        !isPeriodicCheckpointName(name, /*staging=*/true))
      return absl::AlreadyExistsError(absl::StrCat(
          dir, ": exists and holds '", entry.path().filename().string(),
          "', which moec did not write; not replacing it (choose another "
          "output directory or remove it)"));
  if (error)
    return absl::InternalError(
        absl::StrCat(dir, ": cannot list: ", error.message()));
  return absl::OkStatus();
}

} // namespace moert
