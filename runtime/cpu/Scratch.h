//===- Scratch.h - per-thread working memory kept across calls --*- C++ -*-===//
//
// Internal to the CPU kernels. A kernel's temporary buffers live from call
// to call: a fresh buffer per call costs an allocation, zeroing and a page
// fault per page, which measured about a fifth of an MoE layer's time. Each
// thread has its own (the OpenMP pool threads persist), grown to the largest
// size asked and never shrunk, so it costs at most what the largest call
// needs; contents are undefined. The tag type (one per kernel file) and the
// slot name a buffer, so no two users are handed the same memory.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_SCRATCH_H
#define MOERT_CPU_SCRATCH_H

#include <cstddef>
#include <memory>
#include <new>

namespace moert::cpu {

struct AlignedDelete {
  void operator()(void *p) const {
    ::operator delete[](p, std::align_val_t(64));
  }
};

/// This thread's buffer `Slot` of user `Tag`: at least `count` elements of
/// T, 64-byte aligned.
template <typename T, typename Tag, int Slot = 0>
T *threadScratch(size_t count) {
  thread_local std::unique_ptr<T, AlignedDelete> buffer;
  thread_local size_t size = 0;
  if (size < count) {
    buffer.reset(static_cast<T *>(
        ::operator new[](count * sizeof(T), std::align_val_t(64))));
    size = count;
  }
  return buffer.get();
}

} // namespace moert::cpu

#endif // MOERT_CPU_SCRATCH_H
