//===- Fp32View.h - launches with bf16 activations, seen as fp32 -*- C++ -*-===//
//
// The artifact stores some activations as bf16 (runtime/artifact/
// Bf16Activations.h). A kernel without a bf16 path for one runs on an fp32
// view of its launch: the bf16 operands widened into backend memory, the
// bf16 results written there and rounded into place after (so a kernel
// must only write its results, never read them). Widening is exact: a kernel
// that rounds its operand to bf16 on the way into a product computes what it
// would on fp32 storage; one that runs fp32 products (machines without
// native bf16 kernels) computes on the rounded values. Backends give the
// memory and the two conversions; kernels that read and write bf16
// themselves skip the copies.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXEC_FP32VIEW_H
#define MOERT_EXEC_FP32VIEW_H

#include "runtime/exec/Backend.h"

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace moert {

/// Whether operand `i` of `launch` is a bf16 activation.
bool isBf16Operand(const KernelLaunch &launch, size_t i);
/// Whether result `i` of `launch` is a bf16 activation.
bool isBf16Result(const KernelLaunch &launch, size_t i);
/// Whether any operand or result of `launch` is one.
bool hasBf16Activations(const KernelLaunch &launch);

/// A backend's means for the view: `take` gives memory for `count` floats,
/// 64-byte aligned, that lasts until the launch's kernels have run; `widen`
/// and `round` convert `count` elements.
struct Fp32ViewMeans {
  absl::FunctionRef<absl::StatusOr<float *>(int64_t count)> take;
  absl::FunctionRef<absl::Status(const uint16_t *from, int64_t count,
                                 float *to)>
      widen;
  absl::FunctionRef<absl::Status(const float *from, int64_t count,
                                 uint16_t *to)>
      round;
};

/// Runs `kernel` on the fp32 view of `launch`.
absl::Status
launchOnFp32View(const KernelLaunch &launch, const Fp32ViewMeans &means,
                 absl::FunctionRef<absl::Status(const KernelLaunch &)> kernel);

} // namespace moert

#endif // MOERT_EXEC_FP32VIEW_H
