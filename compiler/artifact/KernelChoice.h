//===- KernelChoice.h - the runtime kernel each op becomes ------*- C++ -*-===//
//
// The artifact names, for every op of a program, the runtime op kind, the
// kernel chosen for it (by dtype where kernels differ) and the attributes
// the kernel reads. The artifact writer records it; the activation storage
// asks it which kernel slot reads or writes a value.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_COMPILER_ARTIFACT_KERNELCHOICE_H
#define MOEC_COMPILER_ARTIFACT_KERNELCHOICE_H

#include "moex_generated.h"

#include "mlir/IR/Operation.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::moe {

struct KernelInfo {
  moert::fb::OpKind op;
  std::string name;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::string stream = {};
};

/// Whether a value computes in bf16: its products take bf16 operands (the
/// kernels are chosen by it).
bool isBf16(Value value);

/// The kernel that runs `op`, or none where no runtime kernel does (the
/// function's return, ops that should have been lowered away).
std::optional<KernelInfo> kernelChoice(Operation *op);

} // namespace mlir::moe

#endif // MOEC_COMPILER_ARTIFACT_KERNELCHOICE_H
