//===- CudaOptimizer.cpp - the optimiser's work on the device -------------===//

#include "runtime/cuda/CudaOptimizer.h"

#include "runtime/cuda/Enqueue.h"
#include "runtime/cuda/StreamScratch.h"
#include "runtime/cuda/kernels/OptimizerKernels.h"

namespace moert::cuda {

absl::Status CudaOptimizer::adamw(float *master, const float *grad, float *m,
                                  float *v, int64_t n, const AdamWStep &step,
                                  void *computeCopy, DType copyType,
                                  Stream &stream) {
  AdamWConstants constants{step.decayFactor, step.stepSize, step.invBias2Sqrt,
                           step.beta1,       step.beta2,    step.eps,
                           step.gradScale};
  return enqueue("cuda.adamw", elementwiseShape(n), context_.limits,
                 [&](const LaunchShape &shape) {
                   return cuda::adamw(master, grad, m, v, n, constants,
                                      computeCopy, copyType, shape,
                                      raw_(stream));
                 });
}

absl::StatusOr<double> CudaOptimizer::sumOfSquares(const float *x, int64_t n,
                                                   Stream &stream) {
  cudaStream_t cuda = raw_(stream);
  StreamScratch scratch(cuda);
  double *partials = nullptr, *sum = nullptr;
  int64_t chunks = std::max<int64_t>((n + kSquaresChunk - 1) / kSquaresChunk, 1);
  for (absl::Status s : {scratch.take(chunks, partials), scratch.take(1, sum)})
    if (!s.ok())
      return s;
  if (auto s = cudaStatus(cuda::sumOfSquares(x, n, partials, sum, cuda),
                          "cuda.sum_of_squares");
      !s.ok())
    return s;
  double host = 0;
  if (auto s = cudaStatus(cudaMemcpyAsync(&host, sum, sizeof(host),
                                          cudaMemcpyDeviceToHost, cuda),
                          "cuda.sum_of_squares");
      !s.ok())
    return s;
  if (auto s = cudaStatus(cudaStreamSynchronize(cuda), "cuda.sum_of_squares");
      !s.ok())
    return s;
  return host;
}

absl::Status CudaOptimizer::accumulate(float *acc, const float *x, int64_t n,
                                       float scale, bool first,
                                       Stream &stream) {
  return enqueue("cuda.accumulate", elementwiseShape(n), context_.limits,
                 [&](const LaunchShape &shape) {
                   return cuda::accumulate(acc, x, n, scale, first, shape,
                                           raw_(stream));
                 });
}

absl::Status CudaOptimizer::zero(float *x, int64_t n, Stream &stream) {
  return cudaStatus(cudaMemsetAsync(x, 0, n * sizeof(float), raw_(stream)),
                    "cuda.zero");
}

} // namespace moert::cuda
