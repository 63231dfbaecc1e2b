//===- Launch.cuh - launching with a checked shape --------------*- CUDA -*-===//

#ifndef MOERT_CUDA_KERNELS_LAUNCH_CUH
#define MOERT_CUDA_KERNELS_LAUNCH_CUH

#include "runtime/cuda/LaunchShape.h"
#include "runtime/cuda/kernels/Kernels.h"

#include <cuda_runtime.h>

namespace moert::cuda {

/// Enqueues `kernel` with `shape` (checked on the host beforehand) and
/// returns the launch's error.
template <typename Kernel, typename... Args>
cudaError_t launchWith(const LaunchShape &shape, cudaStream_t stream,
                       Kernel kernel, Args... args) {
  dim3 grid(unsigned(shape.gridX), unsigned(shape.gridY), unsigned(shape.gridZ));
  kernel<<<grid, unsigned(shape.threads), size_t(shape.sharedBytes), stream>>>(
      args...);
  return cudaGetLastError();
}

/// Lets `kernel` take `bytes` of dynamic shared memory on the current
/// device (above 48 KiB it must opt in). A host-side attribute call, cheap
/// beside the launch: set at every launch, so every device gets it.
template <typename Kernel>
cudaError_t optInSharedMemory(Kernel kernel, int64_t bytes) {
  return cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
}

/// The first index of this thread and the stride of a grid-stride loop.
__device__ inline int64_t firstIndex() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t gridStride() {
  return int64_t(gridDim.x) * blockDim.x;
}

/// Sum over the block (blockDim.x a multiple of 32, at most 1024); every
/// thread gets the total.
__device__ inline double blockSum(double value) {
  __shared__ double partial[32];
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads(); // partial may still be read by a previous call
  if (lane == 0)
    partial[warp] = value;
  __syncthreads();
  int warps = blockDim.x / 32;
  value = lane < warps ? partial[lane] : 0.0;
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

/// Keeps the first fault of the stream; the others are dropped.
__device__ inline void reportFault(DeviceFault *fault, int32_t code, int32_t site,
                            int64_t value, int64_t position, int64_t limit) {
  if (atomicCAS(&fault->code, kNoFault, code) == kNoFault) {
    fault->site = site;
    fault->value = value;
    fault->position = position;
    fault->limit = limit;
  }
}

} // namespace moert::cuda

#endif // MOERT_CUDA_KERNELS_LAUNCH_CUH
