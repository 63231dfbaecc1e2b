//===- Fp32View.cpp - launches with bf16 activations, seen as fp32 --------===//

#include "runtime/exec/Fp32View.h"

#include "runtime/artifact/Bf16Activations.h"

namespace moert {

bool isBf16Operand(const KernelLaunch &launch, size_t i) {
  return launch.operands[i].dtype == DType::kBF16 &&
         readsBf16Activation(launch.kernel->op(), i);
}

bool isBf16Result(const KernelLaunch &launch, size_t i) {
  return launch.results[i].dtype == DType::kBF16 &&
         writesBf16Activation(launch.kernel->op(), i);
}

bool hasBf16Activations(const KernelLaunch &launch) {
  for (size_t i = 0; i < launch.operands.size(); ++i)
    if (isBf16Operand(launch, i))
      return true;
  for (size_t i = 0; i < launch.results.size(); ++i)
    if (isBf16Result(launch, i))
      return true;
  return false;
}

namespace {
/// A copy's floats, rounded up so that the next one starts 64 bytes on, as
/// arena values do (vector loads, cuBLASLt's alignment-keyed plans).
int64_t paddedCount(const TensorRef &ref) {
  return (ref.numElements() + 15) / 16 * 16;
}
} // namespace

absl::Status
launchOnFp32View(const KernelLaunch &launch, const Fp32ViewMeans &means,
                 absl::FunctionRef<absl::Status(const KernelLaunch &)> kernel) {
  // One block of memory holds every fp32 copy.
  int64_t total = 0;
  for (size_t i = 0; i < launch.operands.size(); ++i)
    if (isBf16Operand(launch, i))
      total += paddedCount(launch.operands[i]);
  for (size_t i = 0; i < launch.results.size(); ++i)
    if (isBf16Result(launch, i))
      total += paddedCount(launch.results[i]);
  absl::StatusOr<float *> block = means.take(total);
  if (!block.ok())
    return block.status();
  float *next = *block;
  auto retype = [&](TensorRef &ref) {
    ref.data = next;
    ref.dtype = DType::kF32;
    next += paddedCount(ref);
  };
  KernelLaunch view = launch;
  for (size_t i = 0; i < launch.operands.size(); ++i) {
    if (!isBf16Operand(launch, i))
      continue;
    retype(view.operands[i]);
    if (auto status = means.widen(launch.operands[i].as<uint16_t>(),
                                  view.operands[i].numElements(),
                                  view.operands[i].as<float>());
        !status.ok())
      return status;
  }
  for (size_t i = 0; i < launch.results.size(); ++i)
    if (isBf16Result(launch, i))
      retype(view.results[i]);
  if (auto status = kernel(view); !status.ok())
    return status;
  for (size_t i = 0; i < launch.results.size(); ++i)
    if (isBf16Result(launch, i))
      if (auto status = means.round(view.results[i].as<float>(),
                                    view.results[i].numElements(),
                                    launch.results[i].as<uint16_t>());
          !status.ok())
        return status;
  return absl::OkStatus();
}

} // namespace moert
