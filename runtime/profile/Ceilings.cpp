//===- Ceilings.cpp - the ceilings' cache file ----------------------------===//

#include "runtime/profile/Ceilings.h"

#include "runtime/base/JsonDepth.h"
#include "runtime/base/ReadFile.h"
#include "runtime/base/WriteFile.h"

#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <omp.h>

namespace moert::profile {

absl::StatusOr<std::string> defaultCeilingsPath() {
  if (const char *cache = std::getenv("XDG_CACHE_HOME"); cache && *cache)
    return absl::StrCat(cache, "/moec/ceilings.json");
  if (const char *home = std::getenv("HOME"); home && *home)
    return absl::StrCat(home, "/.cache/moec/ceilings.json");
  return absl::FailedPreconditionError(
      "no cache directory for the ceilings: set XDG_CACHE_HOME or HOME, or "
      "pass --ceilings FILE");
}

absl::StatusOr<Ceilings> readCeilings(const std::string &path) {
  absl::StatusOr<std::string> text = readFile(path);
  if (!text.ok())
    return text.status();
  auto fail = [&](const std::string &what) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", what, "; run `moe-run calibrate --force` to measure again"));
  };
  if (findJsonTooDeep(*text) != std::string_view::npos)
    return fail(absl::StrCat("malformed JSON: nested deeper than ", kMaxJsonDepth, " levels"));
  nlohmann::json json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded() || !json.is_object())
    return fail("not a JSON object");
  Ceilings ceilings;
  auto positive = [&](const char *field, double &out) -> absl::Status {
    auto it = json.find(field);
    if (it == json.end() || !it->is_number() || !std::isfinite(it->get<double>()) ||
        it->get<double>() <= 0)
      return fail(absl::StrCat("field '", field, "' must be a positive number"));
    out = it->get<double>();
    return absl::OkStatus();
  };
  double threads = 0;
  for (auto [field, out] : {std::pair{"gemm_gflops_f32", &ceilings.gemmGflopsF32},
                            std::pair{"gemm_gflops_bf16", &ceilings.gemmGflopsBf16},
                            std::pair{"bandwidth_gb_per_s", &ceilings.bandwidthGbs},
                            std::pair{"threads", &threads}})
    if (absl::Status status = positive(field, *out); !status.ok())
      return status;
  if (auto read = json.find("read_gb_per_s"); read != json.end())
    if (absl::Status status = positive("read_gb_per_s", ceilings.readBandwidthGbs);
        !status.ok())
      return status;
  if (threads != std::floor(threads) || threads > 1e6)
    return fail("field 'threads' must be a whole number of threads");
  ceilings.threads = int(threads);
  return ceilings;
}

absl::Status writeCeilings(const std::string &path, const Ceilings &ceilings) {
  std::error_code error;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty())
    std::filesystem::create_directories(parent, error);
  if (error)
    return absl::FailedPreconditionError(
        absl::StrCat(parent.string(), ": cannot create: ", error.message()));
  nlohmann::json json = {{"gemm_gflops_f32", ceilings.gemmGflopsF32},
                         {"gemm_gflops_bf16", ceilings.gemmGflopsBf16},
                         {"bandwidth_gb_per_s", ceilings.bandwidthGbs},
                         {"read_gb_per_s", ceilings.readBandwidthGbs},
                         {"threads", ceilings.threads}};
  return writeFileAtomically(path, json.dump(2) + "\n");
}

absl::StatusOr<Ceilings> cachedCeilings(const std::string &path,
                                        bool remeasure, bool &measured) {
  measured = false;
  if (!remeasure && std::filesystem::exists(path)) {
    absl::StatusOr<Ceilings> cached = readCeilings(path);
    if (!cached.ok() || cached->threads == omp_get_max_threads())
      return cached;
  }
  absl::StatusOr<Ceilings> ceilings = measureCeilings();
  if (!ceilings.ok())
    return ceilings.status();
  if (absl::Status status = writeCeilings(path, *ceilings); !status.ok())
    return status;
  measured = true;
  return ceilings;
}

} // namespace moert::profile
