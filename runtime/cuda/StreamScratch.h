//===- StreamScratch.h - temporaries of one launch --------------*- C++ -*-===//
//
// Device memory a launch needs only while its kernels run, from the
// stream-ordered pool: allocated and freed in stream order, so the pool
// hands the same memory to the next launch without synchronising.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_STREAMSCRATCH_H
#define MOERT_CUDA_STREAMSCRATCH_H

#include "runtime/cuda/CudaStatus.h"

#include <cuda_runtime_api.h>

#include <vector>

namespace moert::cuda {

class StreamScratch {
public:
  explicit StreamScratch(cudaStream_t stream) : stream_(stream) {}
  ~StreamScratch() {
    for (void *p : taken_)
      cudaFreeAsync(p, stream_);
  }
  StreamScratch(const StreamScratch &) = delete;
  StreamScratch &operator=(const StreamScratch &) = delete;

  /// `count` elements of T; an error status when the pool cannot give them.
  template <typename T> absl::Status take(int64_t count, T *&into) {
    void *p = nullptr;
    if (auto s = cudaStatus(
            cudaMallocAsync(&p, std::max<int64_t>(count, 1) * sizeof(T),
                            stream_),
            "scratch memory");
        !s.ok())
      return s;
    taken_.push_back(p);
    into = static_cast<T *>(p);
    return absl::OkStatus();
  }

private:
  cudaStream_t stream_;
  std::vector<void *> taken_;
};

} // namespace moert::cuda

#endif // MOERT_CUDA_STREAMSCRATCH_H
