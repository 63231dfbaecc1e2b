//===- CheckLaunchShape.h - launch shapes against device limits -*- C++ -*-===//
//
// A shape too large for the device is a status naming the kernel before
// the launch, not a launch failure found later or a silently cut grid.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_CHECKLAUNCHSHAPE_H
#define MOERT_CUDA_CHECKLAUNCHSHAPE_H

#include "runtime/cuda/LaunchShape.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <string>
#include <string_view>

namespace moert::cuda {

inline absl::Status checkLaunchShape(const LaunchShape &shape,
                                     std::string_view kernel,
                                     const DeviceLimits &limits) {
  auto refuse = [&](const char *what, int64_t have, int64_t most) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(kernel), ": ", what, " ", have,
                     " exceeds the device's limit of ", most));
  };
  if (shape.gridX < 1 || shape.gridY < 1 || shape.gridZ < 1 ||
      shape.threads < 1)
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(kernel), ": empty launch grid"));
  if (shape.gridX > limits.maxGridX)
    return refuse("grid x", shape.gridX, limits.maxGridX);
  if (shape.gridY > limits.maxGridY)
    return refuse("grid y", shape.gridY, limits.maxGridY);
  if (shape.gridZ > limits.maxGridZ)
    return refuse("grid z", shape.gridZ, limits.maxGridZ);
  if (shape.threads > limits.maxThreads)
    return refuse("block of", shape.threads, limits.maxThreads);
  if (shape.sharedBytes > limits.maxSharedBytes)
    return refuse("shared memory of", shape.sharedBytes, limits.maxSharedBytes);
  return absl::OkStatus();
}

} // namespace moert::cuda

#endif // MOERT_CUDA_CHECKLAUNCHSHAPE_H
