//===- GradMatmul.h - oneDNN GEMMs with transposed operands -----*- C++ -*-===//
//
// Internal to the backward kernels: c[M, N] (+)= op(a) op(b) in fp32, where
// each operand is read in place either as stored or transposed, so neither
// dy^T nor a weight is ever copied out. Primitives are cached per shape.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_GRADMATMUL_H
#define MOERT_CPU_GRADMATMUL_H

#include "absl/status/status.h"

#include <cstdint>

namespace moert::cpu {

/// How an operand lies in memory: a [rows, cols] operand is stored either
/// row-major as is, or row-major as its [cols, rows] transpose.
enum class Layout { kAsIs, kTransposed };

/// c[m, n] = op(a)[m, k] op(b)[k, n] (plus the old c when `accumulate`).
/// a and b are both fp32 or both bf16 (`bf16`); c is fp32.
absl::Status gradMatmul(const void *a, Layout aLayout, const void *b,
                        Layout bLayout, float *c, int64_t m, int64_t k,
                        int64_t n, bool bf16, bool accumulate = false);

} // namespace moert::cpu

#endif // MOERT_CPU_GRADMATMUL_H
