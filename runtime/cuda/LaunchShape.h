//===- LaunchShape.h - grids and blocks, checked on the host ----*- C++ -*-===//
//
// Every kernel's grid, block and shared memory are computed here, on the
// host, and checked against the device's limits before the launch
// (CheckLaunchShape.h). Plain C++ that nvcc also reads: tested without a GPU.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_LAUNCHSHAPE_H
#define MOERT_CUDA_LAUNCHSHAPE_H

#include "runtime/cuda/math/ExpertTiles.h"

#include <algorithm>
#include <cstdint>

namespace moert::cuda {

/// What the device allows (Hopper's values until the device says).
struct DeviceLimits {
  int64_t maxGridX = 2147483647, maxGridY = 65535, maxGridZ = 65535;
  int64_t maxThreads = 1024;
  int64_t maxSharedBytes = 232448; // opt-in shared memory per block, sm_90
};

struct LaunchShape {
  int64_t gridX = 1, gridY = 1, gridZ = 1;
  int64_t threads = 1;
  int64_t sharedBytes = 0;
};

/// Grid-stride elementwise work: enough blocks to fill the device, capped
/// so that the grid stays valid for any element count.
inline LaunchShape elementwiseShape(int64_t elements, int64_t threads = 256) {
  constexpr int64_t kMaxBlocks = 65536; // then each thread strides
  return {std::clamp<int64_t>((elements + threads - 1) / threads, 1, kMaxBlocks),
          1, 1, threads, 0};
}

/// One block per row, rows on x (y and z are 65535 at most).
inline LaunchShape rowShape(int64_t rows, int64_t threads,
                            int64_t sharedBytes = 0) {
  return {std::max<int64_t>(rows, 1), 1, 1, threads, sharedBytes};
}

/// The experts' tiled GEMMs (kernels/ExpertGemm.cu) over at most
/// `rowsBound` grouped rows and `width` output columns: a block per
/// possible row tile on x (those past the last return at once), a block per
/// 64 columns on y.
inline LaunchShape expertGemmShape(int64_t rowsBound, int64_t experts,
                                   int64_t width) {
  using namespace cuda_math;
  return {std::max<int64_t>(expertTileBound(rowsBound, experts), 1),
          std::max<int64_t>((width + kExpertTileCols - 1) / kExpertTileCols, 1),
          1, kExpertGemmThreads, 0};
}

} // namespace moert::cuda

#endif // MOERT_CUDA_LAUNCHSHAPE_H
