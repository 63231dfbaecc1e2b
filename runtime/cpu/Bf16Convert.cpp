//===- Bf16Convert.cpp - fp32 to bf16 and back, on all threads ------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"

namespace moert::cpu {
namespace {
MOERT_ISA_CLONES
void widenRange(const uint16_t *in, int64_t begin, int64_t end, float *out) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i)
    out[i] = bf16ToFloat(in[i]);
}
} // namespace

MOERT_ISA_CLONES
void roundRangeToBf16(const float *in, int64_t begin, int64_t end,
                      uint16_t *out) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i)
    out[i] = floatToBf16(in[i]);
}

void roundToBf16(const float *in, int64_t n, uint16_t *out) {
  forBlocks(n, Threads::kAll, [&](int64_t begin, int64_t end) {
    roundRangeToBf16(in, begin, end, out);
  });
}

void widenBf16(const uint16_t *in, int64_t n, float *out) {
  forBlocks(n, Threads::kAll, [&](int64_t begin, int64_t end) {
    widenRange(in, begin, end, out);
  });
}

} // namespace moert::cpu
