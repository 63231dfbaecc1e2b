//===- LossPlot.cpp - loss curves as an SVG image -------------------------===//

#include "runtime/train/LossPlot.h"

#include "runtime/base/WriteFile.h"
#include "runtime/base/XmlEscape.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moert::train {
namespace {
constexpr double kWidth = 720, kHeight = 440;
constexpr double kLeft = 70, kRight = 20, kTop = 40, kBottom = 50;
constexpr const char *kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b"};
} // namespace

std::string lossPlotSvg(const std::vector<LossCurve> &curves,
                        const std::string &title) {
  double xMin = INFINITY, xMax = -INFINITY, yMin = INFINITY, yMax = -INFINITY;
  for (const LossCurve &curve : curves)
    for (auto [x, y] : curve.points) {
      if (!std::isfinite(y))
        continue;
      xMin = std::min(xMin, x), xMax = std::max(xMax, x);
      yMin = std::min(yMin, y), yMax = std::max(yMax, y);
    }
  if (!(xMin <= xMax))
    xMin = 0, xMax = 1, yMin = 0, yMax = 1;
  if (xMax == xMin)
    xMax = xMin + 1;
  double pad = std::max(1e-6, (yMax - yMin) * 0.05);
  yMin -= pad, yMax += pad;
  double plotW = kWidth - kLeft - kRight, plotH = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - xMin) / (xMax - xMin) * plotW; };
  auto py = [&](double y) { return kTop + (yMax - y) / (yMax - yMin) * plotH; };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n",
      kWidth, kHeight, kWidth / 2, escapeXml(title));
  for (int i = 0; i <= 5; ++i) { // grid and tick labels
    double y = yMin + (yMax - yMin) * i / 5, x = xMin + (xMax - xMin) * i / 5;
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>"
        "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n"
        "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%.0f</text>\n",
        kLeft, py(y), kWidth - kRight, py(y), kLeft - 6, py(y) + 4, y, px(x),
        kHeight - kBottom + 18, x);
  }
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
      "stroke=\"#333\"/>\n<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">step"
      "</text>\n<text x=\"16\" y=\"%g\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 16 %g)\">loss</text>\n",
      kLeft, kTop, plotW, plotH, kLeft + plotW / 2, kHeight - 12,
      kTop + plotH / 2, kTop + plotH / 2);
  for (size_t c = 0; c < curves.size(); ++c) {
    const char *color = kColors[c % std::size(kColors)];
    std::string path;
    for (auto [x, y] : curves[c].points)
      if (std::isfinite(y))
        absl::StrAppendFormat(&path, "%s%.1f,%.1f ", path.empty() ? "M" : "L",
                              px(x), py(y));
    absl::StrAppendFormat(
        &svg,
        "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n"
        "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
        "stroke-width=\"3\"/><text x=\"%g\" y=\"%g\">%s</text>\n",
        path, color, kWidth - kRight - 200, kTop + 16 + 18 * c,
        kWidth - kRight - 176, kTop + 16 + 18 * c, color,
        kWidth - kRight - 170, kTop + 20 + 18 * c, escapeXml(curves[c].label));
  }
  return svg + "</svg>\n";
}

absl::Status writeLossPlot(const std::string &path,
                           const std::vector<LossCurve> &curves,
                           const std::string &title) {
  return writeFileAtomically(path, lossPlotSvg(curves, title));
}

} // namespace moert::train
