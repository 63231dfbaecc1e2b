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
#include <new>

namespace moert::cpu {

/// One thread's buffer: grown to the largest size asked, freed at thread
/// exit. The destructor is defined out of line (Scratch.cpp): clang leaves
/// an inline one unemitted for the thread_local in threadScratch when that
/// is instantiated in target-specific functions, and the link fails.
struct ScratchBuffer {
  void *data = nullptr;
  size_t bytes = 0;
  ~ScratchBuffer();
};

/// This thread's buffer `Slot` of user `Tag`: at least `count` elements of
/// T, 64-byte aligned.
template <typename T, typename Tag, int Slot = 0>
T *threadScratch(size_t count) {
  thread_local ScratchBuffer buffer;
  if (buffer.bytes < count * sizeof(T)) {
    ::operator delete[](buffer.data, std::align_val_t(64));
    buffer.data = nullptr; // stays consistent if the allocation throws
    buffer.bytes = 0;
    buffer.data = ::operator new[](count * sizeof(T), std::align_val_t(64));
    buffer.bytes = count * sizeof(T);
  }
  return static_cast<T *>(buffer.data);
}

} // namespace moert::cpu

#endif // MOERT_CPU_SCRATCH_H
