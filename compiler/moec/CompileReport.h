//===- CompileReport.h - what moec compile --report prints ------*- C++ -*-===//
//
// A human-readable account of one compile: the passes run and their wall
// time, the kernels chosen for each program, and the planned memory by
// value kind; for a training step also the activations it keeps for the
// backward pass, per layer and per token.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_MOEC_COMPILEREPORT_H
#define MOEC_MOEC_COMPILEREPORT_H

#include "compiler/artifact/WriteArtifact.h"
#include "compiler/support/PassTimer.h"

namespace mlir::moe {

/// The model's decoder layers (num_hidden_layers of its config; 1 without).
int64_t modelLayers(ModuleOp module);

void printCompileReport(const ArtifactSummary &summary,
                        llvm::ArrayRef<PassTime> passes, llvm::raw_ostream &os);

} // namespace mlir::moe

#endif // MOEC_MOEC_COMPILEREPORT_H
