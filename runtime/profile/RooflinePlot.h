//===- RooflinePlot.h - a profile's roofline as an SVG image ----*- C++ -*-===//

#ifndef MOERT_PROFILE_ROOFLINEPLOT_H
#define MOERT_PROFILE_ROOFLINEPLOT_H

#include "runtime/profile/Ceilings.h"

#include <string>
#include <vector>

namespace moert::profile {

struct RooflinePoint {
  std::string label;
  double intensity = 0; // FLOPs per byte
  double gflops = 0;    // achieved
};

/// Log-log axes: each point at its arithmetic intensity and achieved rate,
/// under the bandwidth roof and the GEMM roofs (f32, bf16) of `ceilings`.
std::string rooflineSvg(const std::vector<RooflinePoint> &points,
                        const Ceilings &ceilings, const std::string &title);

} // namespace moert::profile

#endif // MOERT_PROFILE_ROOFLINEPLOT_H
