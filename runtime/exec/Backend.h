//===- Backend.h - the contract every execution backend meets ---*- C++ -*-===//
//
// Made for asynchronous devices: memory lives in backend buffers, work is
// enqueued on streams and completes by synchronize(). The CPU backend runs
// each launch when it is enqueued and shares host memory; a CUDA backend
// maps these calls onto cudaMalloc, cudaMemcpyAsync and kernel launches on
// cudaStream_t without changing the executor.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXEC_BACKEND_H
#define MOERT_EXEC_BACKEND_H

#include "runtime/artifact/Artifact.h"
#include "runtime/base/DType.h"

#include "absl/status/statusor.h"

#include <memory>
#include <string_view>
#include <vector>

namespace moert {

/// A tensor bound for one launch: backend memory plus its static layout.
struct TensorRef {
  void *data = nullptr;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;

  int64_t numElements() const {
    int64_t count = 1;
    for (int64_t d : shape)
      count *= d;
    return count;
  }
  template <typename T> T *as() const { return static_cast<T *>(data); }
};

/// One kernel of the artifact with its operands and results bound.
struct KernelLaunch {
  const fb::Kernel *kernel = nullptr;
  std::vector<TensorRef> operands;
  std::vector<TensorRef> results;
  /// The parameters among the operands keep their values for as long as the
  /// launch lives (inference and generation, not training), so the backend
  /// may derive copies of them once, such as weights repacked for its GEMMs.
  bool constantWeights = false;
  /// What the backend's prepare() derived for the launch; null: nothing.
  std::shared_ptr<const void> prepared;
};

class DeviceBuffer {
public:
  virtual ~DeviceBuffer() = default;
  virtual void *data() = 0;
  virtual size_t size() const = 0;
};

/// An ordered queue of work on a device.
class Stream {
public:
  virtual ~Stream() = default;
  /// Waits for everything enqueued so far; reports the first failure.
  virtual absl::Status synchronize() = 0;
};

/// One AdamW update's constants, as runtime/train/AdamW.cpp forms them
/// (in double, then rounded): master = master * decayFactor - stepSize * m /
/// (sqrt(v) * invBias2Sqrt + eps), with the gradient scaled by gradScale.
struct AdamWStep {
  float decayFactor, stepSize, invBias2Sqrt, beta1, beta2, eps, gradScale;
};

/// The optimiser's element-wise work on a backend's own memory, so a
/// trainer whose parameters live on a device keeps its masters and moments
/// there too.
class DeviceOptimizer {
public:
  virtual ~DeviceOptimizer() = default;
  /// One AdamW update of master, m and v [n] from grad; with a compute copy
  /// (bf16 or f16; null for fp32 parameters), the master rounded into it.
  virtual absl::Status adamw(float *master, const float *grad, float *m,
                             float *v, int64_t n, const AdamWStep &step,
                             void *computeCopy, DType copyType,
                             Stream &stream) = 0;
  /// The sum of squares of x [n], in double, in a fixed order.
  virtual absl::StatusOr<double> sumOfSquares(const float *x, int64_t n,
                                              Stream &stream) = 0;
  /// acc = (first ? 0 : acc) + scale * x, over n elements.
  virtual absl::Status accumulate(float *acc, const float *x, int64_t n,
                                  float scale, bool first, Stream &stream) = 0;
  /// x [n] = 0.
  virtual absl::Status zero(float *x, int64_t n, Stream &stream) = 0;
};

class Backend {
public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  /// True when device buffers are host memory, so host data (such as a
  /// memory-mapped checkpoint) can be used in place without a copy.
  virtual bool sharesHostMemory() const = 0;

  virtual absl::StatusOr<std::unique_ptr<DeviceBuffer>>
  allocate(size_t bytes) = 0;
  virtual std::unique_ptr<Stream> createStream() = 0;
  virtual absl::Status copyToDevice(const void *host, void *device,
                                    size_t bytes, Stream &stream) = 0;
  virtual absl::Status copyToHost(const void *device, void *host, size_t bytes,
                                  Stream &stream) = 0;

  /// Checks once, before any run, that a launch is well formed (operand
  /// shapes agree with each other and with the kernel's attributes), so a
  /// damaged artifact is refused instead of read out of bounds; may set
  /// launch.prepared (its parameters must then hold their values).
  virtual absl::Status prepare(KernelLaunch &launch) = 0;
  /// Enqueues a prepared launch.
  virtual absl::Status launch(const KernelLaunch &launch, Stream &stream) = 0;

  /// The optimiser's work on this backend's memory; null where the trainer
  /// does it on the host (the CPU backend, whose memory is the host's).
  virtual DeviceOptimizer *optimizer() { return nullptr; }
};

} // namespace moert

#endif // MOERT_EXEC_BACKEND_H
