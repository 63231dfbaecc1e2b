//===- RooflinePlot.cpp - a profile's roofline as an SVG image ------------===//

#include "runtime/profile/RooflinePlot.h"

#include "runtime/base/XmlEscape.h"

#include "absl/strings/str_format.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace moert::profile {
namespace {
constexpr double kWidth = 760, kHeight = 480;
constexpr double kLeft = 80, kRight = 30, kTop = 40, kBottom = 60;

/// Decades that hold `low` .. `high` (positive).
std::pair<double, double> decades(double low, double high) {
  return {std::floor(std::log10(low)), std::ceil(std::log10(high))};
}
} // namespace

std::string rooflineSvg(const std::vector<RooflinePoint> &points,
                        const Ceilings &ceilings, const std::string &title) {
  double peak = std::max(ceilings.gemmGflopsF32, ceilings.gemmGflopsBf16);
  double xLow = 0.1, xHigh = 1000, yLow = peak / 1000, yHigh = peak * 2;
  for (const RooflinePoint &p : points)
    if (p.intensity > 0 && p.gflops > 0) {
      xLow = std::min(xLow, p.intensity), xHigh = std::max(xHigh, p.intensity);
      yLow = std::min(yLow, p.gflops), yHigh = std::max(yHigh, p.gflops);
    }
  // Plain variables: the lambdas below capture them (C++17 captures no
  // structured binding).
  double x0, x1, y0, y1;
  std::tie(x0, x1) = decades(xLow, xHigh);
  std::tie(y0, y1) = decades(yLow, yHigh);
  double plotW = kWidth - kLeft - kRight, plotH = kHeight - kTop - kBottom;
  auto px = [&](double x) {
    return kLeft + (std::log10(x) - x0) / (x1 - x0) * plotW;
  };
  auto py = [&](double y) {
    return kTop + (y1 - std::log10(y)) / (y1 - y0) * plotH;
  };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">%s"
      "</text>\n",
      kWidth, kHeight, kWidth / 2, escapeXml(title));
  for (double d = x0; d <= x1; ++d)
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>"
        "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%g</text>\n",
        px(std::pow(10, d)), kTop, px(std::pow(10, d)), kTop + plotH,
        px(std::pow(10, d)), kTop + plotH + 16, std::pow(10, d));
  for (double d = y0; d <= y1; ++d)
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>"
        "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%g</text>\n",
        kLeft, py(std::pow(10, d)), kLeft + plotW, py(std::pow(10, d)),
        kLeft - 6, py(std::pow(10, d)) + 4, std::pow(10, d));
  absl::StrAppendFormat(
      &svg,
      "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">arithmetic intensity "
      "(FLOP/byte)</text>\n<text transform=\"translate(18 %g) rotate(-90)\" "
      "text-anchor=\"middle\">GFLOP/s</text>\n",
      kLeft + plotW / 2, kHeight - 16, kTop + plotH / 2);

  // The roofs: bandwidth x intensity up to each GEMM rate, then flat.
  const struct {
    double rate;
    const char *name, *color;
  } roofs[] = {{ceilings.gemmGflopsF32, "f32 GEMM", "#1f77b4"},
               {ceilings.gemmGflopsBf16, "bf16 GEMM", "#d62728"}};
  double xMin = std::pow(10, x0), xMax = std::pow(10, x1);
  for (const auto &roof : roofs) {
    double ridge = roof.rate / ceilings.bandwidthGbs;
    double start = std::max(xMin, std::pow(10, y0) / ceilings.bandwidthGbs);
    absl::StrAppendFormat(
        &svg,
        "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
        "points=\"%g,%g %g,%g %g,%g\"/>\n<text x=\"%g\" y=\"%g\" "
        "text-anchor=\"end\" fill=\"%s\">%s %.0f GFLOP/s</text>\n",
        roof.color, px(start), py(start * ceilings.bandwidthGbs), px(ridge),
        py(roof.rate), px(xMax), py(roof.rate), kLeft + plotW - 4,
        py(roof.rate) - 5, roof.color, roof.name, roof.rate);
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%g\" y=\"%g\" fill=\"#555\">triad %.1f "
                        "GB/s</text>\n",
                        kLeft + 6, kTop + plotH - 6, ceilings.bandwidthGbs);
  for (const RooflinePoint &p : points) {
    if (!(p.intensity > 0 && p.gflops > 0))
      continue;
    absl::StrAppendFormat(
        &svg,
        "<circle cx=\"%g\" cy=\"%g\" r=\"4\" fill=\"#2ca02c\"/>"
        "<text x=\"%g\" y=\"%g\" font-size=\"10\">%s</text>\n",
        px(p.intensity), py(p.gflops), px(p.intensity) + 6, py(p.gflops) + 3,
        escapeXml(p.label));
  }
  return svg + "</svg>\n";
}

} // namespace moert::profile
