//===- StoredTile.h - a task's results into fp32 or bf16 storage -*- C++ -*-===//
//
// Internal to the CPU kernels. Row kernels compute in fp32; where their
// result is an activation stored as bf16 (runtime/artifact/
// Bf16Activations.h), each task computes into a tile of its thread's scratch
// and rounds it into place, so no fp32 copy of the whole result exists.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_STOREDTILE_H
#define MOERT_CPU_STOREDTILE_H

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Scratch.h"

#include <type_traits>

namespace moert::cpu {

/// Calls compute(rows) for `count` floats of results that belong at `out`:
/// `out` itself when it is fp32; for bf16, a tile (this thread's scratch of
/// user `Tag`) rounded into `out` after.
template <typename Tag, typename O, typename Compute>
void computeStored(O *out, int64_t count, const Compute &compute) {
  if constexpr (std::is_same_v<O, float>) {
    compute(out);
  } else {
    static_assert(std::is_same_v<O, uint16_t>, "fp32 or bf16 storage");
    float *tile = threadScratch<float, Tag>(size_t(count));
    compute(tile);
    roundRangeToBf16(tile, 0, count, out);
  }
}

} // namespace moert::cpu

#endif // MOERT_CPU_STOREDTILE_H
