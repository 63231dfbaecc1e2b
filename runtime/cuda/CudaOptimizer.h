//===- CudaOptimizer.h - the optimiser's work on the device -----*- C++ -*-===//

#ifndef MOERT_CUDA_CUDAOPTIMIZER_H
#define MOERT_CUDA_CUDAOPTIMIZER_H

#include "runtime/cuda/CudaContext.h"

#include <cuda_runtime_api.h>

namespace moert::cuda {

/// AdamW, gradient norms and accumulation in device memory, on the stream
/// each call is given (`raw` turns the backend's Stream into its CUDA one).
class CudaOptimizer : public DeviceOptimizer {
public:
  CudaOptimizer(const CudaContext &context,
                cudaStream_t (*raw)(Stream &))
      : context_(context), raw_(raw) {}
  absl::Status adamw(float *master, const float *grad, float *m, float *v,
                     int64_t n, const AdamWStep &step, void *computeCopy,
                     DType copyType, Stream &stream) override;
  absl::StatusOr<double> sumOfSquares(const float *x, int64_t n,
                                      Stream &stream) override;
  absl::Status accumulate(float *acc, const float *x, int64_t n, float scale,
                          bool first, Stream &stream) override;
  absl::Status zero(float *x, int64_t n, Stream &stream) override;

private:
  const CudaContext &context_;
  cudaStream_t (*raw_)(Stream &);
};

} // namespace moert::cuda

#endif // MOERT_CUDA_CUDAOPTIMIZER_H
