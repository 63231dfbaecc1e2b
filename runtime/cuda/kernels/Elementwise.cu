//===- Elementwise.cu - activations, sums, gates and conversions ---------===//

#include "runtime/cuda/kernels/Kernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/Activations.h"
#include "runtime/cuda/math/Storage.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

__global__ void unaryKernel(Unary op, const float *x, int64_t n, float param,
                            float *out) {
  for (int64_t i = firstIndex(); i < n; i += gridStride()) {
    switch (op) {
    case Unary::kSilu:
      out[i] = silu(x[i]);
      break;
    case Unary::kClamp:
      out[i] = clampTo(x[i], param);
      break;
    case Unary::kScale:
      out[i] = x[i] * param;
      break;
    case Unary::kFill:
      out[i] = param;
      break;
    }
  }
}

__global__ void binaryKernel(Binary op, const float *a, const float *b,
                             int64_t n, float *out) {
  for (int64_t i = firstIndex(); i < n; i += gridStride()) {
    switch (op) {
    case Binary::kAdd:
      out[i] = a[i] + b[i];
      break;
    case Binary::kMul:
      out[i] = a[i] * b[i];
      break;
    case Binary::kSwiglu:
      out[i] = swiglu(a[i], b[i]);
      break;
    }
  }
}

__global__ void addBiasKernel(const float *x, const void *bias, DType type,
                              int64_t n, int64_t width, float *out) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    out[i] = x[i] + loadWeight(bias, type, i % width);
}

__global__ void sigmoidGateKernel(const float *x, const float *gate, int64_t n,
                                  int64_t width, float *out) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    out[i] = x[i] * sigmoid(gate[i / width]);
}

__global__ void roundToBf16Kernel(const float *x, int64_t n, uint16_t *out) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    out[i] = floatToBf16(x[i]);
}

__global__ void widenKernel(const void *w, DType type, int64_t n, float *out) {
  for (int64_t i = firstIndex(); i < n; i += gridStride())
    out[i] = loadWeight(w, type, i);
}

} // namespace

cudaError_t unary(Unary op, const float *x, int64_t n, float param, float *out,
                  const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, unaryKernel, op, x, n, param, out);
}

cudaError_t binary(Binary op, const float *a, const float *b, int64_t n,
                   float *out, const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, binaryKernel, op, a, b, n, out);
}

cudaError_t addBias(const float *x, const void *bias, DType biasType,
                    int64_t rows, int64_t width, float *out,
                    const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, addBiasKernel, x, bias, biasType,
                    rows * width, width, out);
}

cudaError_t sigmoidGate(const float *x, const float *gate, int64_t rows,
                        int64_t width, float *out, const LaunchShape &shape,
                        cudaStream_t stream) {
  return launchWith(shape, stream, sigmoidGateKernel, x, gate, rows * width,
                    width, out);
}

cudaError_t roundToBf16(const float *x, int64_t n, uint16_t *out,
                        const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, roundToBf16Kernel, x, n, out);
}

cudaError_t widen(const void *w, DType type, int64_t n, float *out,
                  const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, widenKernel, w, type, n, out);
}

} // namespace moert::cuda
