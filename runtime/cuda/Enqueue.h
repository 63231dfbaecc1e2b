//===- Enqueue.h - a kernel launch with its shape checked -------*- C++ -*-===//

#ifndef MOERT_CUDA_ENQUEUE_H
#define MOERT_CUDA_ENQUEUE_H

#include "runtime/cuda/CheckLaunchShape.h"
#include "runtime/cuda/CudaStatus.h"

namespace moert::cuda {

/// Checks `shape` against the device, then runs `body(shape)` (which
/// enqueues the kernel and returns its launch error); a failure names the
/// kernel.
template <typename Body>
absl::Status enqueue(const char *kernel, const LaunchShape &shape,
                     const DeviceLimits &limits, Body body) {
  if (auto s = checkLaunchShape(shape, kernel, limits); !s.ok())
    return s;
  return cudaStatus(body(shape), kernel);
}

} // namespace moert::cuda

#endif // MOERT_CUDA_ENQUEUE_H
