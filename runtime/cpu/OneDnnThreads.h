//===- OneDnnThreads.h - the threads a oneDNN call runs on ------*- C++ -*-===//
//
// Internal to the kernels that call oneDNN. oneDNN plans a primitive's split
// over the calling thread's OpenMP thread count when the primitive is made
// and splits its work by that count when it runs, so a GEMM that must run
// on one thread (inside a parallel region, or one whose result would
// otherwise depend on the thread count) sets the count for both.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_ONEDNNTHREADS_H
#define MOERT_CPU_ONEDNNTHREADS_H

#include <omp.h>

namespace moert::cpu {

/// Sets the calling thread's OpenMP thread count for the scope, restoring
/// it on exit.
class ThreadCount {
public:
  explicit ThreadCount(int threads) : saved_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ThreadCount() { omp_set_num_threads(saved_); }
  ThreadCount(const ThreadCount &) = delete;
  ThreadCount &operator=(const ThreadCount &) = delete;

private:
  int saved_;
};

} // namespace moert::cpu

#endif // MOERT_CPU_ONEDNNTHREADS_H
