//===- LossPlot.h - loss curves as an SVG image -----------------*- C++ -*-===//

#ifndef MOERT_TRAIN_LOSSPLOT_H
#define MOERT_TRAIN_LOSSPLOT_H

#include "absl/status/status.h"

#include <string>
#include <utility>
#include <vector>

namespace moert::train {

struct LossCurve {
  std::string label;
  std::vector<std::pair<double, double>> points; // (step, loss)
};

/// The curves on shared axes with a legend, as a self-contained SVG
/// document (any browser or image viewer shows it).
std::string lossPlotSvg(const std::vector<LossCurve> &curves,
                        const std::string &title);

/// Writes lossPlotSvg to `path` atomically (temporary name, then rename).
absl::Status writeLossPlot(const std::string &path,
                           const std::vector<LossCurve> &curves,
                           const std::string &title);

} // namespace moert::train

#endif // MOERT_TRAIN_LOSSPLOT_H
