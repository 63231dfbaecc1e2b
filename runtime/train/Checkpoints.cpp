//===- Checkpoints.cpp - a run directory's periodic checkpoints -----------===//

#include "runtime/train/Checkpoints.h"

#include "runtime/base/JsonDepth.h"
#include "runtime/base/ReadFile.h"
#include "runtime/checkpoint/HfCheckpoint.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <unistd.h>
#include <vector>

namespace moert::train {
namespace fs = std::filesystem;
namespace {

/// (step, path) of each periodic checkpoint of `runDir`, oldest first.
std::vector<std::pair<int64_t, std::string>> periodicCheckpoints(
    const std::string &runDir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code error;
  for (const fs::directory_entry &entry : fs::directory_iterator(runDir, error)) {
    std::string name = entry.path().filename().string();
    int64_t step = 0;
    if (isPeriodicCheckpointName(name) &&
        absl::SimpleAtoi(name.substr(name.find('-') + 1), &step))
      found.push_back({step, entry.path().string()});
  }
  std::sort(found.begin(), found.end());
  return found;
}

/// The step a checkpoint's trainer_state.json records, or -1.
int64_t savedStep(const std::string &dir) {
  absl::StatusOr<std::string> text = readFile(dir + "/trainer_state.json");
  if (!text.ok() || findJsonTooDeep(*text) != std::string::npos)
    return -1;
  nlohmann::json state = nlohmann::json::parse(*text, nullptr, false);
  return state.is_object() && state.contains("step") &&
                 state["step"].is_number_integer()
             ? state["step"].get<int64_t>()
             : -1;
}

} // namespace

std::string periodicCheckpointDir(const std::string &runDir, int64_t step) {
  return absl::StrCat(runDir, "/checkpoint-", step);
}

absl::Status pruneCheckpoints(const std::string &runDir, int64_t keep) {
  // What a killed run was writing or removing goes too.
  std::error_code error;
  std::string ours = absl::StrCat("-", getpid());
  for (const fs::directory_entry &entry : fs::directory_iterator(runDir, error))
    if (std::string name = entry.path().filename().string();
        isPeriodicCheckpointName(name, /*staging=*/true) &&
        !absl::EndsWith(name, ours))
      fs::remove_all(entry.path(), error);
  auto found = periodicCheckpoints(runDir);
  for (size_t i = 0; i + size_t(std::max<int64_t>(keep, 0)) < found.size(); ++i) {
    std::string aside = absl::StrCat(found[i].second, ".old-", getpid());
    fs::rename(found[i].second, aside, error);
    if (!error)
      fs::remove_all(aside, error);
    if (error)
      return absl::InternalError(absl::StrCat(
          found[i].second, ": cannot remove: ", error.message()));
  }
  return absl::OkStatus();
}

std::string newestCheckpoint(const std::string &dir) {
  std::string newest = dir;
  int64_t newestStep = savedStep(dir);
  for (const auto &[step, path] : periodicCheckpoints(dir))
    if (step > newestStep && savedStep(path) == step)
      newest = path, newestStep = step;
  return newest;
}

} // namespace moert::train
