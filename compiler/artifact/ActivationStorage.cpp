//===- ActivationStorage.cpp - the dtype each activation is stored in -----===//

#include "compiler/artifact/ActivationStorage.h"

#include "dialects/moe/MoeOps.h"
#include "runtime/artifact/Bf16Activations.h"

#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/TypeSwitch.h"

#include <optional>

using namespace mlir;
using namespace mlir::moe;
namespace fb = moert::fb;

namespace {
/// The artifact op of the ops that can read or write bf16 activations.
std::optional<fb::OpKind> bf16Kind(Operation *op) {
  using Kind = std::optional<fb::OpKind>;
  return llvm::TypeSwitch<Operation *, Kind>(op)
      .Case([](LinearOp) { return fb::OpKind::Linear; })
      .Case([](LinearGradWeightOp) { return fb::OpKind::LinearGradWeight; })
      .Case([](AttentionOp) { return fb::OpKind::Attention; })
      .Case([](AttentionGradOp) { return fb::OpKind::AttentionGrad; })
      .Case([](RopeOp) { return fb::OpKind::Rope; })
      .Case([](RMSNormOp) { return fb::OpKind::RmsNorm; })
      .Case([](FusedExpertsOp) { return fb::OpKind::FusedExperts; })
      .Case([](FusedExpertsTrainOp) { return fb::OpKind::FusedExpertsTrain; })
      .Case([](FusedExpertsGradOp) { return fb::OpKind::FusedExpertsGrad; })
      .Default([](Operation *) { return Kind(); });
}
} // namespace

bool ActivationStorage::storedAsBf16(Value value) const {
  auto result = llvm::dyn_cast<OpResult>(value);
  if (!bf16 || !result || !getElementTypeOrSelf(value.getType()).isBF16())
    return false;
  std::optional<fb::OpKind> producer = bf16Kind(result.getOwner());
  if (!producer ||
      !moert::writesBf16Activation(*producer, result.getResultNumber()))
    return false;
  // A function's results (read by the tools) and unread values stay fp32.
  if (value.use_empty())
    return false;
  for (OpOperand &use : value.getUses()) {
    std::optional<fb::OpKind> reader = bf16Kind(use.getOwner());
    if (!reader ||
        !moert::readsBf16Activation(*reader, use.getOperandNumber()))
      return false;
  }
  return true;
}

int64_t moe::storageBytes(Type elementType) {
  if (llvm::isa<FloatType>(elementType))
    return 4;
  return std::max<int64_t>(1, elementType.getIntOrFloatBitWidth() / 8);
}

int64_t ActivationStorage::elementBytes(Value value) const {
  return storedAsBf16(value) ? 2
                             : storageBytes(getElementTypeOrSelf(value.getType()));
}
