//===- PlotCommand.cpp - moe-run plot -------------------------------------===//
//
//   moe-run plot OUT.svg LABEL=RUN_DIR/metrics.jsonl ...
//
// Draws the training-loss curves of several runs (the `loss` of each step
// in their metrics.jsonl) on one chart.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/JsonDepth.h"
#include "runtime/base/Printable.h"
#include "runtime/base/ReadFile.h"
#include "runtime/train/LossPlot.h"

#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using moert::train::LossCurve;

int runPlot(const std::vector<std::string> &arguments) {
  auto fail = [](const std::string &message) {
    std::cerr << "moe-run plot: error: " << moert::printable(message) << "\n";
    return 1;
  };
  if (arguments.size() < 2)
    return fail("usage: moe-run plot OUT.svg LABEL=RUN_DIR/metrics.jsonl ...");
  std::vector<LossCurve> curves;
  for (size_t i = 1; i < arguments.size(); ++i) {
    size_t equals = arguments[i].rfind('='); // labels may hold '='
    if (equals == std::string::npos)
      return fail(absl::StrCat("'", arguments[i], "' is not LABEL=METRICS.jsonl"));
    std::string path = arguments[i].substr(equals + 1);
    absl::StatusOr<std::string> text = moert::readFile(path, "a metrics.jsonl");
    if (!text.ok())
      return fail(std::string(text.status().message()));
    std::istringstream in(*text);
    LossCurve curve{arguments[i].substr(0, equals), {}};
    int64_t number = 0;
    for (std::string line; std::getline(in, line);) {
      ++number;
      nlohmann::json record =
          moert::findJsonTooDeep(line) == std::string::npos
              ? nlohmann::json::parse(line, nullptr, false)
              : nlohmann::json(nlohmann::json::value_t::discarded);
      if (record.is_discarded() || !record.is_object())
        return fail(absl::StrCat(path, ":", number, ": not a JSON object"));
      if (record.contains("loss") && record["loss"].is_number() &&
          record.contains("step") && record["step"].is_number())
        curve.points.push_back({record["step"].get<double>(),
                                record["loss"].get<double>()});
    }
    curves.push_back(std::move(curve));
  }
  if (auto status =
          moert::train::writeLossPlot(arguments[0], curves, "training loss");
      !status.ok())
    return fail(std::string(status.message()));
  std::cout << "plot: " << arguments[0] << "\n";
  return 0;
}
