//===- KernelSite.h - a program's kernels in the model's terms --*- C++ -*-===//

#ifndef MOERT_PROFILE_KERNELSITE_H
#define MOERT_PROFILE_KERNELSITE_H

#include "runtime/artifact/Artifact.h"
#include "runtime/base/DType.h"
#include "runtime/profile/KernelCost.h"

#include <string>
#include <vector>

namespace moert::profile {

/// One kernel of a program, named as the model names its parts.
struct KernelSite {
  /// "model.layers.3.block_sparse_moe/fused_experts": where in the model,
  /// then the op.
  std::string name;
  std::string op;       // "fused_experts"
  std::string layer;    // "model.layers.3", or the part outside the layers
  std::string kernel;   // the implementation, "cpu.fused_experts.onednn.f32"
  std::string location; // as the artifact recorded it (--list-kernels)
  std::string operands, results; // "f32[2x16x64] bf16[4x64]"
  /// bf16 when any operand is bf16 (its products run in bf16), else f32.
  DType computeType = DType::kF32;
  KernelCost cost;
};

std::vector<KernelSite> describeProgram(const fb::Model &model,
                                        const fb::Program &program);

} // namespace moert::profile

#endif // MOERT_PROFILE_KERNELSITE_H
