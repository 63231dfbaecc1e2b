//===- Registration.h - what every moec tool knows --------------*- C++ -*-===//
//
// The one place that says which dialects and passes exist, shared by moec and
// moe-opt so the two never disagree.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_REGISTRATION_H
#define MOEC_REGISTRATION_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::moe {

/// Registers the moe dialect and the upstream dialects models are built from.
void registerAllMoecDialects(DialectRegistry &registry);

/// Registers moe's passes and the upstream passes used in its pipelines.
void registerAllMoecPasses();

} // namespace mlir::moe

#endif // MOEC_REGISTRATION_H
