//===- Bf16Convert.cpp - fp32 to bf16 and back, on all threads ------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"

#include <algorithm>

namespace moert::cpu {
namespace {
// Large blocks, so that threads seldom share a cache line.
constexpr int64_t kBlock = 1 << 14;

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
  int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b)
    roundRangeToBf16(in, b * kBlock, std::min(n, (b + 1) * kBlock), out);
}

void widenBf16(const uint16_t *in, int64_t n, float *out) {
  int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b)
    widenRange(in, b * kBlock, std::min(n, (b + 1) * kBlock), out);
}

} // namespace moert::cpu
