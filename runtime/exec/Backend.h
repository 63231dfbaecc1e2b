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
  /// damaged artifact is refused instead of read out of bounds.
  virtual absl::Status prepare(const KernelLaunch &launch) = 0;
  /// Enqueues a prepared launch.
  virtual absl::Status launch(const KernelLaunch &launch, Stream &stream) = 0;
};

} // namespace moert

#endif // MOERT_EXEC_BACKEND_H
