//===- Rows.cu - embedding, RMSNorm, RoPE and the router's top-k ---------===//

#include "runtime/cuda/kernels/Kernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/RowMath.h"
#include "runtime/cuda/math/Storage.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

__global__ void embeddingKernel(const void *table, DType type, int64_t vocab,
                                int64_t d, const int32_t *ids, int64_t n,
                                float *out, DeviceFault *fault, int32_t site) {
  for (int64_t i = firstIndex(); i < n; i += gridStride()) {
    int64_t id = ids[i / d], j = i % d;
    if (id < 0 || id >= vocab) {
      if (j == 0)
        reportFault(fault, kIdOutOfRange, site, id, i / d, vocab);
      out[i] = 0.0f;
      continue;
    }
    out[i] = loadWeight(table, type, id * d + j);
  }
}

__global__ void rmsNormKernel(const float *x, const void *weight, DType type,
                              int64_t group, double eps, float *y) {
  const float *in = x + int64_t(blockIdx.x) * group;
  float *out = y + int64_t(blockIdx.x) * group;
  double squares = 0;
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x)
    squares += double(in[i]) * in[i];
  float inverse = rmsInverse(blockSum(squares), group, eps);
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x)
    out[i] = in[i] * inverse * loadWeight(weight, type, i);
}

__global__ void ropeKernel(const float *x, float *out, int64_t seq,
                           int64_t heads, int64_t headDim,
                           RopeFrequencies frequencies, const void *positions,
                           DType positionsType, float sign) {
  int64_t token = blockIdx.x, half = headDim / 2;
  float position =
      !positions ? float(token % seq)
      : positionsType == DType::kI64
          ? float(static_cast<const int64_t *>(positions)[token])
          : float(static_cast<const int32_t *>(positions)[token]);
  for (int64_t p = threadIdx.x; p < heads * half; p += blockDim.x) {
    int64_t h = p / half, i = p % half;
    float angle = position * frequencies.inverse[i];
    const float *head = x + (token * heads + h) * headDim;
    float *rotated = out + (token * heads + h) * headDim;
    ropeRotate(head[i], head[i + half], cosf(angle), sinf(angle) * sign,
               rotated[i], rotated[i + half]);
  }
}

__global__ void routerTopKKernel(const float *logits, int64_t tokens,
                                 int experts, int k, bool normalize,
                                 float *weights, int32_t *indices) {
  float probs[kMaxRouterExperts];
  for (int64_t t = firstIndex(); t < tokens; t += gridStride())
    routerTopKRow(logits + t * experts, experts, k, normalize, probs,
                  weights + t * k, indices + t * k);
}

__global__ void cacheWriteKernel(const float *rows, const int32_t *positions,
                                 int64_t count, int64_t width,
                                 int64_t capacity, int64_t n, float *cache,
                                 DeviceFault *fault, int32_t site) {
  for (int64_t i = firstIndex(); i < n; i += gridStride()) {
    int64_t row = i / width, b = row / count, position = positions[row];
    if (position >= capacity) {
      if (i % width == 0)
        reportFault(fault, kPastCapacity, site, position, b, capacity);
      continue;
    }
    if (position >= 0)
      cache[(b * capacity + position) * width + i % width] = rows[i];
  }
}

__global__ void selectRowsKernel(const float *input, const int32_t *index,
                                 int64_t rows, int64_t picks, int64_t width,
                                 int64_t n, float *out, DeviceFault *fault,
                                 int32_t site) {
  for (int64_t i = firstIndex(); i < n; i += gridStride()) {
    int64_t pick = i / width, b = pick / picks, row = index[pick];
    if (row < 0 || row >= rows) {
      if (i % width == 0)
        reportFault(fault, kRowOutOfRange, site, row, b, rows);
      out[i] = 0.0f;
      continue;
    }
    out[i] = input[(b * rows + row) * width + i % width];
  }
}

} // namespace

cudaError_t cacheWrite(const float *rows, const int32_t *positions,
                       int64_t batch, int64_t count, int64_t width,
                       int64_t capacity, float *cache, DeviceFault *fault,
                       int32_t site, const LaunchShape &shape,
                       cudaStream_t stream) {
  return launchWith(shape, stream, cacheWriteKernel, rows, positions, count,
                    width, capacity, batch * count * width, cache, fault,
                    site);
}

cudaError_t selectRows(const float *input, const int32_t *index, int64_t batch,
                       int64_t rows, int64_t picks, int64_t width, float *out,
                       DeviceFault *fault, int32_t site,
                       const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, selectRowsKernel, input, index, rows, picks,
                    width, batch * picks * width, out, fault, site);
}

cudaError_t embedding(const void *table, DType tableType, int64_t vocab,
                      int64_t d, const int32_t *ids, int64_t count, float *out,
                      DeviceFault *fault, int32_t site,
                      const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, embeddingKernel, table, tableType, vocab, d,
                    ids, count * d, out, fault, site);
}

cudaError_t rmsNorm(const float *x, const void *weight, DType weightType,
                    int64_t, int64_t group, double eps, float *y,
                    const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, rmsNormKernel, x, weight, weightType, group,
                    eps, y);
}

cudaError_t rope(const float *x, float *out, int64_t, int64_t seq,
                 int64_t heads, int64_t headDim,
                 const RopeFrequencies &frequencies, const void *positions,
                 DType positionsType, bool inverse, const LaunchShape &shape,
                 cudaStream_t stream) {
  return launchWith(shape, stream, ropeKernel, x, out, seq, heads, headDim,
                    frequencies, positions, positionsType,
                    inverse ? -1.0f : 1.0f);
}

cudaError_t routerTopK(const float *logits, int64_t tokens, int experts, int k,
                       bool normalize, float *weights, int32_t *indices,
                       const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, routerTopKKernel, logits, tokens, experts, k,
                    normalize, weights, indices);
}

} // namespace moert::cuda
