//===- InitKernels.h - the CUDA kernels of initialisation programs -*- C++ -*-===//
//
// Drop-Upcycling's draws on the device (Init.cu), from the counter-based
// streams of math/Philox.h: element i of a stream is the CPU's element i.
// Conventions as in Kernels.h.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_KERNELS_INITKERNELS_H
#define MOERT_CUDA_KERNELS_INITKERNELS_H

#include "runtime/cuda/kernels/Kernels.h"

namespace moert::cuda {

/// A stream of random draws: its seed and key (keyOf of its name).
struct RandomStream {
  uint64_t seed, key;
};

/// out[i] = mean + std * normal(i). Elementwise shape.
cudaError_t randomNormal(float *out, int64_t n, float mean, float std,
                         RandomStream stream, const LaunchShape &shape,
                         cudaStream_t cuda);
/// out[i] = uniform [0, 1) (i) shifted by the draws' mean and scaled to
/// `std`: (u - mean(u)) * std * sqrt(12). `sum` is scratch of one double.
/// Elementwise shape.
cudaError_t centeredUniform(float *out, int64_t n, double std, double *sum,
                            RandomStream stream, const LaunchShape &shape,
                            cudaStream_t cuda);
/// The chosen rows (axis 0) or columns (axis 1) `indices` [count] of x
/// [rows, cols]: their mean and unbiased std (device scalars), in double
/// (one block). An index outside the axis faults.
cudaError_t sliceMoments(const float *x, int64_t rows, int64_t cols,
                         const int64_t *indices, int64_t count, int64_t axis,
                         float *mean, float *std, DeviceFault *fault,
                         int32_t site, cudaStream_t cuda);
/// out (a copy of x) with the chosen slice redrawn: mean + std * normal
/// (mean and std device scalars, or stdValue when std is null), or with
/// `noise`, x + std * normal; element (r, c) draws stream element
/// r * cols + c. An index outside the axis faults. Elementwise shape over
/// count * the other axis.
cudaError_t redrawSlice(const float *x, int64_t rows, int64_t cols,
                        const int64_t *indices, int64_t count, int64_t axis,
                        const float *mean, const float *std, float stdValue,
                        bool noise, RandomStream stream, float *out,
                        DeviceFault *fault, int32_t site,
                        const LaunchShape &shape, cudaStream_t cuda);

} // namespace moert::cuda

#endif // MOERT_CUDA_KERNELS_INITKERNELS_H
