//===- ImportModel.h - HF config to the moe dialect -------------*- C++ -*-===//

#ifndef MOEC_IMPORT_IMPORTMODEL_H
#define MOEC_IMPORT_IMPORTMODEL_H

#include "compiler/import/HFConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir::moe {

/// Builds the module of a model: one `moe.param` per checkpoint tensor (HF
/// names; Mixtral experts stacked, see docs/import.md) and `@forward`, which
/// maps token ids [B, S] to logits [B, S, V]. `elementType` is the dtype of
/// parameters and activations (null: the config's torch_dtype).
OwningOpRef<ModuleOp> importModel(const HFConfig &config, MLIRContext *context,
                                  Type elementType = {});

/// The element type a torch dtype name stands for, or null.
Type elementTypeForTorchDtype(StringRef dtype, MLIRContext *context);

} // namespace mlir::moe

#endif // MOEC_IMPORT_IMPORTMODEL_H
