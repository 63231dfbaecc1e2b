//===- Grads.cu - backward of activations, gates, norms and embeddings ---===//

#include "runtime/cuda/kernels/GradKernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/GradMath.h"
#include "runtime/cuda/math/RowMath.h"
#include "runtime/cuda/math/Storage.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

__global__ void unaryGradKernel(UnaryGrad op, const float *x, const float *dy,
                                int64_t n, float param, float *dx) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    dx[i] = op == UnaryGrad::kSilu ? cuda_math::siluGrad(x[i], dy[i])
                                   : clampGrad(x[i], dy[i], param);
}

__global__ void swigluGradKernel(const float *gate, const float *up,
                                 const float *dy, int64_t n, float *dgate,
                                 float *dup) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    cuda_math::swigluGrad(gate[i], up[i], dy[i], dgate[i], dup[i]);
}

__global__ void sigmoidGateGradKernel(const float *x, const float *gate,
                                      const float *dy, int64_t width,
                                      float *dx, float *dgate) {
  int64_t r = blockIdx.x;
  float s = sigmoid(gate[r]);
  double dot = 0;
  for (int64_t j = threadIdx.x; j < width; j += blockDim.x) {
    dot += double(dy[r * width + j]) * x[r * width + j];
    dx[r * width + j] = dy[r * width + j] * s;
  }
  dot = blockSum(dot);
  if (threadIdx.x == 0)
    dgate[r] = float(dot * s * (1.0f - s));
}

/// dx = inverse * g - x * inverse^3 / d * <g, x>, g = dy * w.
__global__ void rmsNormGradKernel(const float *x, const void *weight,
                                  DType type, const float *dy, int64_t group,
                                  double eps, float *dx, float *inverses) {
  int64_t r = blockIdx.x;
  const float *in = x + r * group, *grad = dy + r * group;
  double squares = 0, projection = 0;
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
    squares += double(in[i]) * in[i];
    projection += double(grad[i] * loadWeight(weight, type, i)) * in[i];
  }
  squares = blockSum(squares);
  projection = blockSum(projection);
  double inverse = 1.0 / sqrt(squares / double(group) + eps);
  float correction = float(inverse * inverse * inverse * projection / group);
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x)
    dx[r * group + i] = float(inverse) * (grad[i] * loadWeight(weight, type, i)) -
                        in[i] * correction;
  if (threadIdx.x == 0)
    inverses[r] = float(inverse);
}

template <typename T> __device__ double term(const T *a, const float *b,
                                            const float *scale, int64_t r,
                                            int64_t cols, int64_t c) {
  if (!b)
    return double(a[r * cols + c]);
  return double(a[r * cols + c] * b[r * cols + c] * scale[r]);
}

/// Pass 1: partials[chunk, c] = the sum of the chunk's rows, in order.
template <typename T>
__global__ void columnPartialsKernel(const T *a, const float *b,
                                     const float *scale, int64_t rows,
                                     int64_t cols, double *partials) {
  int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t chunk = blockIdx.y;
  if (c >= cols)
    return;
  double sum = 0;
  int64_t end = min(rows, (chunk + 1) * kColumnChunk);
  for (int64_t r = chunk * kColumnChunk; r < end; ++r)
    sum += term(a, b, scale, r, cols, c);
  partials[chunk * cols + c] = sum;
}

/// Pass 2: out[c] = the chunks' partials, in order.
template <typename T>
__global__ void columnFinishKernel(const double *partials, int64_t chunks,
                                   int64_t cols, T *out) {
  int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols)
    return;
  double sum = 0;
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    sum += partials[chunk * cols + c];
  out[c] = T(sum);
}

template <typename T, typename Out>
cudaError_t sumColumns(const T *a, const float *b, const float *scale,
                       int64_t rows, int64_t cols, double *partials, Out *out,
                       const LaunchShape &shape, cudaStream_t stream) {
  if (cudaError_t error = launchWith(shape, stream, columnPartialsKernel<T>, a,
                                     b, scale, rows, cols, partials);
      error != cudaSuccess)
    return error;
  LaunchShape finish = shape;
  finish.gridY = 1;
  return launchWith(finish, stream, columnFinishKernel<Out>,
                    static_cast<const double *>(partials), shape.gridY, cols,
                    out);
}

/// One block per vocabulary row: the ids are read in chunks, in order, and
/// each match's dy row added (threads over the columns).
__global__ void embeddingGradKernel(const int32_t *ids, int64_t n,
                                    const float *dy, int64_t d,
                                    float *dtable) {
  __shared__ int32_t chunk[256];
  int64_t id = blockIdx.x;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    dtable[id * d + j] = 0.0f;
  for (int64_t base = 0; base < n; base += 256) {
    __syncthreads();
    if (base + threadIdx.x < n)
      chunk[threadIdx.x] = ids[base + threadIdx.x];
    __syncthreads();
    int64_t count = n - base < 256 ? n - base : 256;
    for (int64_t i = 0; i < count; ++i)
      if (chunk[i] == id)
        for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
          dtable[id * d + j] += dy[(base + i) * d + j];
  }
}

} // namespace

cudaError_t unaryGrad(UnaryGrad op, const float *x, const float *dy,
                      int64_t n, float param, float *dx,
                      const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, unaryGradKernel, op, x, dy, n, param, dx);
}

cudaError_t swigluGrad(const float *gate, const float *up, const float *dy,
                       int64_t n, float *dgate, float *dup,
                       const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, swigluGradKernel, gate, up, dy, n, dgate,
                    dup);
}

cudaError_t sigmoidGateGrad(const float *x, const float *gate, const float *dy,
                            int64_t, int64_t width, float *dx, float *dgate,
                            const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, sigmoidGateGradKernel, x, gate, dy, width,
                    dx, dgate);
}

cudaError_t rmsNormGrad(const float *x, const void *weight, DType weightType,
                        const float *dy, int64_t group, double eps, float *dx,
                        float *inverses, const LaunchShape &shape,
                        cudaStream_t stream) {
  return launchWith(shape, stream, rmsNormGradKernel, x, weight, weightType, dy,
                    group, eps, dx, inverses);
}

cudaError_t columnSums(const float *a, const float *b, const float *scale,
                       int64_t rows, int64_t cols, double *partials,
                       float *out, const LaunchShape &shape,
                       cudaStream_t stream) {
  return sumColumns(a, b, scale, rows, cols, partials, out, shape, stream);
}

cudaError_t columnSums(const double *a, int64_t rows, int64_t cols,
                       double *partials, double *out, const LaunchShape &shape,
                       cudaStream_t stream) {
  return sumColumns(a, static_cast<const float *>(nullptr),
                    static_cast<const float *>(nullptr), rows, cols, partials,
                    out, shape, stream);
}

cudaError_t embeddingGrad(const int32_t *ids, int64_t n, const float *dy,
                          int64_t d, float *dtable, const LaunchShape &shape,
                          cudaStream_t stream) {
  return launchWith(shape, stream, embeddingGradKernel, ids, n, dy, d, dtable);
}

} // namespace moert::cuda
