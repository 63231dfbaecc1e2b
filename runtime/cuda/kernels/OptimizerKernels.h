//===- OptimizerKernels.h - the device optimiser's kernels ------*- C++ -*-===//

#ifndef MOERT_CUDA_KERNELS_OPTIMIZERKERNELS_H
#define MOERT_CUDA_KERNELS_OPTIMIZERKERNELS_H

#include "runtime/cuda/kernels/Kernels.h"

namespace moert::cuda {

/// AdamWStep's fields (Backend.h), which nvcc does not read.
struct AdamWConstants {
  float decayFactor, stepSize, invBias2Sqrt, beta1, beta2, eps, gradScale;
};

/// One AdamW update of master, m, v [n]; the master rounded into `copy`
/// (bf16 or f16) when given. Elementwise shape.
cudaError_t adamw(float *master, const float *grad, float *m, float *v,
                  int64_t n, const AdamWConstants &constants, void *copy,
                  DType copyType, const LaunchShape &shape,
                  cudaStream_t stream);
/// *out = the sum of squares of x [n] in double: chunks of kSquaresChunk
/// summed per block, then the chunks in order (`partials` holds one double
/// per chunk).
constexpr int64_t kSquaresChunk = 1 << 16;
cudaError_t sumOfSquares(const float *x, int64_t n, double *partials,
                         double *out, cudaStream_t stream);
/// acc = (first ? 0 : acc) + scale * x. Elementwise shape.
cudaError_t accumulate(float *acc, const float *x, int64_t n, float scale,
                       bool first, const LaunchShape &shape,
                       cudaStream_t stream);

} // namespace moert::cuda

#endif // MOERT_CUDA_KERNELS_OPTIMIZERKERNELS_H
