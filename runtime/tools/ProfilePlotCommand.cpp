//===- ProfilePlotCommand.cpp - moe-run profile-plot ----------------------===//
//
//   moe-run profile-plot PROFILE.json -o FILE.svg
//
// Draws the roofline of a profile that --profile-json wrote: each op kind a
// point at its arithmetic intensity and achieved GFLOP/s, under the
// ceilings the profile was measured against.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/JsonDepth.h"
#include "runtime/base/Printable.h"
#include "runtime/base/ReadFile.h"
#include "runtime/base/WriteFile.h"
#include "runtime/profile/RooflinePlot.h"

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

ABSL_FLAG(std::string, o, "", "profile-plot: the SVG file to write");

namespace {
using moert::profile::Ceilings;
using moert::profile::RooflinePoint;

/// The points and ceilings of a --profile-json document; errors name the
/// field.
absl::Status readProfile(const nlohmann::json &json, Ceilings &ceilings,
                         std::vector<RooflinePoint> &points) {
  auto number = [](const nlohmann::json &object, const char *field,
                   const std::string &where, double &out) -> absl::Status {
    auto it = object.find(field);
    if (it == object.end() || !it->is_number() ||
        !std::isfinite(it->get<double>()) || it->get<double>() < 0)
      return absl::InvalidArgumentError(absl::StrCat(
          "field '", where, field, "' must be a non-negative number"));
    out = it->get<double>();
    return absl::OkStatus();
  };
  if (!json.is_object() || !json.contains("ceilings") ||
      !json["ceilings"].is_object())
    return absl::InvalidArgumentError("field 'ceilings' must be an object");
  const nlohmann::json &c = json["ceilings"];
  for (auto [field, out] :
       {std::pair{"gemm_gflops_f32", &ceilings.gemmGflopsF32},
        std::pair{"gemm_gflops_bf16", &ceilings.gemmGflopsBf16},
        std::pair{"bandwidth_gb_per_s", &ceilings.bandwidthGbs}}) {
    if (absl::Status status = number(c, field, "ceilings.", *out); !status.ok())
      return status;
    if (*out <= 0)
      return absl::InvalidArgumentError(
          absl::StrCat("field 'ceilings.", field, "' must be positive"));
  }
  if (!json.contains("by_op") || !json["by_op"].is_array())
    return absl::InvalidArgumentError("field 'by_op' must be an array");
  for (size_t i = 0; i < json["by_op"].size(); ++i) {
    const nlohmann::json &row = json["by_op"][i];
    std::string where = absl::StrCat("by_op[", i, "].");
    if (!row.is_object() || !row.contains("name") || !row["name"].is_string())
      return absl::InvalidArgumentError(
          absl::StrCat("field '", where, "name' must be a string"));
    RooflinePoint point{row["name"].get<std::string>(), 0, 0};
    for (auto [field, out] : {std::pair{"intensity", &point.intensity},
                              std::pair{"gflops", &point.gflops}})
      if (absl::Status status = number(row, field, where, *out); !status.ok())
        return status;
    points.push_back(std::move(point));
  }
  return absl::OkStatus();
}
} // namespace

int runProfilePlot(const std::vector<std::string> &arguments) {
  auto fail = [](const std::string &message) {
    std::cerr << "moe-run profile-plot: error: " << moert::printable(message)
              << "\n";
    return 1;
  };
  std::string out = absl::GetFlag(FLAGS_o);
  if (arguments.size() != 1 || out.empty())
    return fail("usage: moe-run profile-plot PROFILE.json -o FILE.svg");
  const std::string &path = arguments[0];
  absl::StatusOr<std::string> text = moert::readFile(path, "a profile");
  if (!text.ok())
    return fail(std::string(text.status().message()));
  nlohmann::json json = moert::findJsonTooDeep(*text) == std::string::npos
                            ? nlohmann::json::parse(*text, nullptr, false)
                            : nlohmann::json(nlohmann::json::value_t::discarded);
  if (json.is_discarded())
    return fail(absl::StrCat(path, ": not JSON (write it with --profile-json)"));
  Ceilings ceilings;
  std::vector<RooflinePoint> points;
  if (absl::Status status = readProfile(json, ceilings, points); !status.ok())
    return fail(absl::StrCat(path, ": ", status.message()));
  if (absl::Status status = moert::writeFileAtomically(
          out, moert::profile::rooflineSvg(points, ceilings,
                                           absl::StrCat("roofline: ", path)));
      !status.ok())
    return fail(std::string(status.message()));
  std::cout << "roofline: " << out << "\n";
  return 0;
}
