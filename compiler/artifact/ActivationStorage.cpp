//===- ActivationStorage.cpp - the dtype each activation is stored in -----===//

#include "compiler/artifact/ActivationStorage.h"

#include "compiler/artifact/KernelChoice.h"
#include "dialects/moe/MoeOps.h"
#include "runtime/artifact/Bf16Activations.h"

#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/TypeSwitch.h"

#include <optional>

using namespace mlir;
using namespace mlir::moe;
namespace fb = moert::fb;

namespace {
/// The artifact op that `op` becomes, if any.
std::optional<fb::OpKind> opKind(Operation *op) {
  if (std::optional<KernelInfo> kernel = kernelChoice(op))
    return kernel->op;
  return std::nullopt;
}

/// Whether the kernel chosen for `reader` rounds its activation operands to
/// bf16: the bf16 GEMMs (by the weight's type, or for a weight gradient its
/// own), the bf16 attention (by the query's type), the fused blocks with
/// bf16 router and experts.
bool roundsToBf16(Operation *reader) {
  return llvm::TypeSwitch<Operation *, bool>(reader)
      .Case([](LinearOp op) { return isBf16(op.getWeight()); })
      .Case([](LinearGradWeightOp op) { return isBf16(op.getResult()); })
      .Case([](AttentionOp op) { return isBf16(op.getQuery()); })
      .Case([](AttentionGradOp op) { return isBf16(op.getQuery()); })
      .Case<FusedExpertsOp, FusedExpertsTrainOp, FusedExpertsGradOp>(
          [](auto op) {
            return isBf16(op.getRouter()) && isBf16(op.getGate()) &&
                   isBf16(op.getUp()) && isBf16(op.getDown());
          })
      .Default([](Operation *) { return false; });
}
} // namespace

bool ActivationStorage::storedAsBf16(Value value) const {
  auto result = llvm::dyn_cast<OpResult>(value);
  if (!bf16 || !result || !isBf16(value))
    return false;
  std::optional<fb::OpKind> producer = opKind(result.getOwner());
  if (!producer ||
      !moert::writesBf16Activation(*producer, result.getResultNumber()))
    return false;
  // A function's results (read by the tools) and unread values stay fp32.
  if (value.use_empty())
    return false;
  for (OpOperand &use : value.getUses()) {
    std::optional<fb::OpKind> reader = opKind(use.getOwner());
    if (!reader ||
        !moert::readsBf16Activation(*reader, use.getOperandNumber()) ||
        !roundsToBf16(use.getOwner()))
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
