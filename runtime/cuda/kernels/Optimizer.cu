//===- Optimizer.cu - AdamW, gradient norms and accumulation -------------===//

#include "runtime/cuda/kernels/OptimizerKernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/AdamWMath.h"
#include "runtime/cuda/math/Storage.h"

#include <cuda_fp16.h>

namespace moert::cuda {
namespace {
using namespace cuda_math;

__global__ void adamwKernel(float *master, const float *grad, float *m,
                            float *v, int64_t n, AdamWConstants c,
                            void *copy, DType copyType) {
  for (int64_t i = firstIndex(); i < n; i += gridStride()) {
    float mi = m[i], vi = v[i];
    float updated =
        adamwElement(master[i], grad[i], mi, vi, c.decayFactor, c.stepSize,
                     c.invBias2Sqrt, c.beta1, c.beta2, c.eps, c.gradScale);
    m[i] = mi;
    v[i] = vi;
    master[i] = updated;
    if (!copy)
      continue;
    if (copyType == DType::kBF16)
      static_cast<uint16_t *>(copy)[i] = floatToBf16(updated);
    else // f16: the device's own round-to-nearest-even
      static_cast<uint16_t *>(copy)[i] =
          __half_as_ushort(__float2half_rn(updated));
  }
}

/// Pass 1: each block's chunk of kSquaresChunk elements, summed in double.
__global__ void squaresKernel(const float *x, int64_t n, double *partials) {
  int64_t begin = int64_t(blockIdx.x) * kSquaresChunk;
  int64_t end = min(n, begin + kSquaresChunk);
  double sum = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    sum += double(x[i]) * x[i];
  sum = blockSum(sum);
  if (threadIdx.x == 0)
    partials[blockIdx.x] = sum;
}

/// Pass 2: the chunks in order.
__global__ void squaresFinishKernel(const double *partials, int64_t chunks,
                                    double *out) {
  double sum = 0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x)
    sum += partials[c];
  sum = blockSum(sum);
  if (threadIdx.x == 0)
    *out = sum;
}

__global__ void accumulateKernel(float *acc, const float *x, int64_t n,
                                 float scale, bool first) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    acc[i] = (first ? 0.0f : acc[i]) + x[i] * scale;
}

} // namespace

cudaError_t adamw(float *master, const float *grad, float *m, float *v,
                  int64_t n, const AdamWConstants &constants, void *copy,
                  DType copyType, const LaunchShape &shape,
                  cudaStream_t stream) {
  return launchWith(shape, stream, adamwKernel, master, grad, m, v, n,
                    constants, copy, copyType);
}

cudaError_t sumOfSquares(const float *x, int64_t n, double *partials,
                         double *out, cudaStream_t stream) {
  int64_t chunks = std::max<int64_t>((n + kSquaresChunk - 1) / kSquaresChunk, 1);
  if (cudaError_t error = launchWith(rowShape(chunks, 256), stream,
                                     squaresKernel, x, n, partials);
      error != cudaSuccess)
    return error;
  return launchWith(rowShape(1, 1024), stream, squaresFinishKernel,
                    static_cast<const double *>(partials), chunks, out);
}

cudaError_t accumulate(float *acc, const float *x, int64_t n, float scale,
                       bool first, const LaunchShape &shape,
                       cudaStream_t stream) {
  return launchWith(shape, stream, accumulateKernel, acc, x, n, scale, first);
}

} // namespace moert::cuda
