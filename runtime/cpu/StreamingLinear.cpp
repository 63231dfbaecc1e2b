//===- StreamingLinear.cpp - a linear layer over a few rows ---------------===//
//
// Decoding multiplies one row per sequence by each weight matrix: a GEMM
// call repacks the weights and splits the work for shapes it was tuned on,
// and reaches about 60% of the memory bandwidth on the lm_head. Here each
// task reads a block of weight rows once (StreamingDot.h) for all input
// rows, which runs at the bandwidth. The inputs are rounded to bf16 exactly
// when the GEMM path would round them, so a layer's result does not depend
// on which path its row count picked.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Scratch.h"
#include "runtime/cpu/StreamingDot.h"

#include <algorithm>

namespace moert::cpu {
namespace {
using namespace streaming;
constexpr int64_t kOutputBlock = 64;
// Up to 8 rows: dotRows takes them 4 at a time, the second pass over a pair
// of weight rows reading it from L1.
constexpr int64_t kMaxLinearRows = 8;

struct Plan {
  const void *x; // [rows, k], fp32 or bf16
  const void *w; // [n, k]
  int64_t rows, k, n;
  float *y;
};

/// Task t: output columns [t * kOutputBlock, +kOutputBlock) of every row.
template <bool Dp, typename X, typename W>
MOERT_ISA_INLINE void outputBlock(const Plan &p, int64_t t) {
  const X *x = static_cast<const X *>(p.x);
  const W *w = static_cast<const W *>(p.w);
  int64_t begin = t * kOutputBlock, end = std::min(p.n, begin + kOutputBlock);
  int64_t i = begin;
  for (; i + 1 < end; i += 2)
    dot<Dp>(p.rows, x, p.k, w + i * p.k, w + (i + 1) * p.k, p.k, p.y + i,
            p.y + i + 1, p.n);
  if (i < end) // the last of an odd count, paired with itself
    dot<Dp>(p.rows, x, p.k, w + i * p.k, w + i * p.k, p.k, p.y + i, p.y + i,
            p.n);
}

[[MOERT_AVX512_BF16, gnu::flatten]] void blockDpBf16(const Plan &p, int64_t t) {
  outputBlock<true, uint16_t, uint16_t>(p, t);
}

template <typename X, typename W>
[[MOERT_AVX512]] void blockAvx512(const Plan &p, int64_t t) {
  outputBlock<false, X, W>(p, t);
}

template <typename X, typename W> void blockBaseline(const Plan &p, int64_t t) {
  outputBlock<false, X, W>(p, t);
}

using BlockFn = void (*)(const Plan &, int64_t);

template <typename X, typename W> BlockFn blockFor() {
  if constexpr (sizeof(X) == 2 && sizeof(W) == 2)
    if (cpuHasAvx512Bf16())
      return &blockDpBf16;
  return cpuHasAvx512() ? &blockAvx512<X, W> : &blockBaseline<X, W>;
}

void runBlocks(const Plan &p, BlockFn block) {
  int64_t blocks = (p.n + kOutputBlock - 1) / kOutputBlock;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < blocks; ++t)
    block(p, t);
}

struct StreamingLinearScratch;
} // namespace

bool streamsLinear(Weight w, int64_t rows) {
  return (w.dtype == DType::kF32 || w.dtype == DType::kBF16) && rows > 0 &&
         rows <= kMaxLinearRows;
}

void streamLinear(const float *x, int64_t rows, int64_t k, Weight w, int64_t n,
                  float *y) {
  Plan p{x, w.data, rows, k, n, y};
  BlockFn block = blockFor<float, float>();
  if (w.dtype == DType::kBF16) {
    block = blockFor<float, uint16_t>();
    if (bf16MatmulIsNative()) {
      uint16_t *rounded =
          threadScratch<uint16_t, StreamingLinearScratch>(size_t(rows * k));
      for (int64_t i = 0; i < rows * k; ++i)
        rounded[i] = floatToBf16(x[i]);
      p.x = rounded;
      block = blockFor<uint16_t, uint16_t>();
    }
  }
  runBlocks(p, block);
}

void streamLinearBf16(const uint16_t *x, int64_t rows, int64_t k, Weight w,
                      int64_t n, float *y) {
  runBlocks({x, w.data, rows, k, n, y}, blockFor<uint16_t, uint16_t>());
}

} // namespace moert::cpu
