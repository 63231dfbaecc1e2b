//===- Init.cu - the kernels of initialisation programs ------------------===//

#include "runtime/cuda/kernels/InitKernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/Philox.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

__global__ void randomNormalKernel(float *out, int64_t n, float mean,
                                   float std, RandomStream s) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    out[i] = float(mean + std * standardNormalAt(s.seed, s.key, uint64_t(i)));
}

__global__ void randomUniformKernel(float *out, int64_t n, RandomStream s) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    out[i] = uniformAt(s.seed, s.key, uint64_t(i));
}

__global__ void sumKernel(const float *x, int64_t n, double *sum) {
  double mine = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    mine += x[i];
  mine = blockSum(mine);
  if (threadIdx.x == 0)
    *sum = mine;
}

__global__ void centerKernel(float *out, int64_t n, double scale,
                             const double *sum) {
  double mean = n ? *sum / n : 0.0;
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    out[i] = float((out[i] - mean) * scale);
}

/// Element j of chosen slice i, as an index into x [rows, cols].
__device__ inline int64_t sliceElement(const int64_t *indices, int64_t i,
                                       int64_t j, int64_t cols, int64_t axis) {
  return axis == 0 ? indices[i] * cols + j : j * cols + indices[i];
}

__device__ bool indicesFault(const int64_t *indices, int64_t count,
                             int64_t limit, DeviceFault *fault, int32_t site) {
  bool bad = false;
  for (int64_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= limit) {
      reportFault(fault, kSliceIndexOutOfRange, site, indices[i], i, limit);
      bad = true;
    }
  return bad;
}

__global__ void sliceMomentsKernel(const float *x, int64_t rows, int64_t cols,
                                   const int64_t *indices, int64_t count,
                                   int64_t axis, float *mean, float *std,
                                   DeviceFault *fault, int32_t site) {
  __shared__ bool bad;
  if (threadIdx.x == 0)
    bad = indicesFault(indices, count, axis == 0 ? rows : cols, fault, site);
  __syncthreads();
  if (bad)
    return;
  int64_t other = axis == 0 ? cols : rows, n = count * other;
  double sum = 0;
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x)
    sum += x[sliceElement(indices, e / other, e % other, cols, axis)];
  double m = n ? blockSum(sum) / n : 0.0, squares = 0;
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
    double d = x[sliceElement(indices, e / other, e % other, cols, axis)] - m;
    squares += d * d;
  }
  squares = blockSum(squares);
  if (threadIdx.x == 0) {
    *mean = float(m);
    *std = n > 1 ? float(sqrt(squares / double(n - 1))) : 0.0f;
  }
}

__global__ void redrawSliceKernel(const float *x, int64_t rows, int64_t cols,
                                  const int64_t *indices, int64_t count,
                                  int64_t axis, const float *mean,
                                  const float *std, float stdValue,
                                  bool noise, RandomStream s, float *out) {
  int64_t other = axis == 0 ? cols : rows, limit = axis == 0 ? rows : cols;
  float m = mean ? *mean : 0.0f, sd = std ? *std : stdValue;
  for (int64_t e = firstIndex(); e < count * other; e += gridStride()) {
    int64_t i = e / other;
    if (indices[i] < 0 || indices[i] >= limit) // sliceMoments reported it
      continue;
    int64_t element = sliceElement(indices, i, e % other, cols, axis);
    double draw = sd * standardNormalAt(s.seed, s.key, uint64_t(element));
    out[element] = noise ? float(x[element] + draw) : float(m + draw);
  }
}

__global__ void checkIndicesKernel(const int64_t *indices, int64_t count,
                                   int64_t limit, DeviceFault *fault,
                                   int32_t site) {
  indicesFault(indices, count, limit, fault, site);
}

} // namespace

cudaError_t randomNormal(float *out, int64_t n, float mean, float std,
                         RandomStream stream, const LaunchShape &shape,
                         cudaStream_t cuda) {
  return launchWith(shape, cuda, randomNormalKernel, out, n, mean, std, stream);
}

cudaError_t centeredUniform(float *out, int64_t n, double std, double *sum,
                            RandomStream stream, const LaunchShape &shape,
                            cudaStream_t cuda) {
  if (cudaError_t error =
          launchWith(shape, cuda, randomUniformKernel, out, n, stream);
      error != cudaSuccess)
    return error;
  if (cudaError_t error = launchWith(rowShape(1, 1024), cuda, sumKernel,
                                     static_cast<const float *>(out), n, sum);
      error != cudaSuccess)
    return error;
  return launchWith(shape, cuda, centerKernel, out, n, std * sqrt(12.0),
                    static_cast<const double *>(sum));
}

cudaError_t sliceMoments(const float *x, int64_t rows, int64_t cols,
                         const int64_t *indices, int64_t count, int64_t axis,
                         float *mean, float *std, DeviceFault *fault,
                         int32_t site, cudaStream_t cuda) {
  return launchWith(rowShape(1, 1024), cuda, sliceMomentsKernel, x, rows, cols,
                    indices, count, axis, mean, std, fault, site);
}

cudaError_t redrawSlice(const float *x, int64_t rows, int64_t cols,
                        const int64_t *indices, int64_t count, int64_t axis,
                        const float *mean, const float *std, float stdValue,
                        bool noise, RandomStream stream, float *out,
                        DeviceFault *fault, int32_t site,
                        const LaunchShape &shape, cudaStream_t cuda) {
  if (out != x)
    if (cudaError_t error =
            cudaMemcpyAsync(out, x, rows * cols * sizeof(float),
                            cudaMemcpyDeviceToDevice, cuda);
        error != cudaSuccess)
      return error;
  if (cudaError_t error =
          launchWith(rowShape(1, 1), cuda, checkIndicesKernel, indices, count,
                     axis == 0 ? rows : cols, fault, site);
      error != cudaSuccess)
    return error;
  return launchWith(shape, cuda, redrawSliceKernel, x, rows, cols, indices,
                    count, axis, mean, std, stdValue, noise, stream, out);
}

} // namespace moert::cuda
