//===- GradMatmul.h - oneDNN GEMMs with transposed operands -----*- C++ -*-===//
//
// Internal to the backward kernels and the grouped experts: c[M, N] (+)=
// op(a) op(b) in fp32, where each operand is read in place either as stored
// or transposed, so neither dy^T nor a weight is ever copied out. Primitives
// take their shape at run time (GradMatmul.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_GRADMATMUL_H
#define MOERT_CPU_GRADMATMUL_H

#include "runtime/cpu/Kernels.h"

#include "absl/status/status.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

namespace moert::cpu {

/// How an operand lies in memory: a [rows, cols] operand is stored either
/// row-major as is, or row-major as its [cols, rows] transpose.
enum class Layout { kAsIs, kTransposed };

/// Which threads a GEMM runs on: all the OpenMP threads (call it from outside
/// a parallel region), or only the calling one, so that the threads of a
/// parallel region may each run their own GEMMs at the same time. Both give
/// the same result (a GEMM whose output is too small to share out by rows
/// and columns runs on one thread even under kAll; see GradMatmul.cpp).
enum class Threads { kAll, kCaller };

/// c[m, n] = op(a)[m, k] op(b)[k, n] (plus the old c when `accumulate`).
/// a and b are both fp32 or both bf16 (`bf16`); c is fp32.
absl::Status gradMatmul(const void *a, Layout aLayout, const void *b,
                        Layout bLayout, float *c, int64_t m, int64_t k,
                        int64_t n, bool bf16, bool accumulate = false,
                        Threads threads = Threads::kAll);

//===----------------------------------------------------------------------===//
// The SwiGLU of the grouped experts (ExpertMlpGrad.cpp), shared by expertMlp
// and expertMlpGrad so that both compute silu(gate) * up alike. They run on
// the calling thread only; callers split rows across threads.
//===----------------------------------------------------------------------===//

/// hidden[i] = silu(gate[i]) * up[i], as fp32 (hiddenBf16 null) or rounded
/// to bf16 (hidden null).
void swigluForward(const float *gate, const float *up, int64_t n,
                   float *hidden, uint16_t *hiddenBf16);

/// The SwiGLU backward's buffers: it reads gate, up and dhidden =
/// d(silu(gate) * up) and writes act = silu(gate) * up and the gradients of
/// gate and up, in fp32 (act, dgate, dup) or, when those are null, only
/// rounded to bf16 (actBf16, dgateBf16, dupBf16): what the next GEMMs read.
struct SwigluGrad {
  const float *gate, *up, *dhidden;
  float *act, *dgate, *dup;
  uint16_t *actBf16, *dgateBf16, *dupBf16;
};

/// The SwiGLU backward over elements [begin, end) of `buffers`.
void swigluBackward(const SwigluGrad &buffers, int64_t begin, int64_t end);

/// Runs body(begin, end) over [0, n): on the calling thread alone
/// (kCaller), or split into one block per thread (kAll). Blocks start at
/// multiples of 64 elements, so an element-wise body vectorised in blocks of
/// up to 64 treats every element alike for any thread count.
template <typename Body>
void forBlocks(int64_t n, Threads threads, const Body &body) {
  if (threads == Threads::kCaller || n <= 4096) {
    body(int64_t(0), n);
    return;
  }
#pragma omp parallel
  {
    int64_t count = omp_get_num_threads();
    int64_t block = ((n + count - 1) / count + 63) / 64 * 64;
    int64_t begin = std::min(n, omp_get_thread_num() * block);
    int64_t end = std::min(n, begin + block);
    if (begin < end)
      body(begin, end);
  }
}

/// Whether the grouped experts (rows per expert in counts) are better run
/// one expert per thread (single-threaded GEMMs, experts side by side) than
/// one expert after the other on all threads: when the experts can be shared
/// out among the threads about evenly. Either gives the same result.
bool expertsSideBySide(const int64_t *counts, int64_t experts);

/// Expert e's slices of the stacked w1, w3 [E, F, D] and w2 [E, D, F]: in
/// place, or widened to fp32 into `wide` (3 F D floats) when `widen`.
struct ExpertSlices {
  const void *w1, *w3, *w2;
};
ExpertSlices expertSlices(const Weight &w1, const Weight &w3, const Weight &w2,
                          int64_t e, int64_t f, int64_t d, bool widen,
                          float *wide, Threads threads);

/// Runs body(e, firstRow, threads) for every expert e of the grouped rows:
/// side by side on single-threaded GEMMs (largest experts first, which
/// balances them) when expertsSideBySide, else one after the other on all
/// threads. Returns the first error.
absl::Status forEachExpert(
    const int64_t *counts, int64_t experts,
    const std::function<absl::Status(int64_t e, int64_t firstRow,
                                     Threads threads)> &body);

} // namespace moert::cpu

#endif // MOERT_CPU_GRADMATMUL_H
