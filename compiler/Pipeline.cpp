//===- Pipeline.cpp - the passes moec compile runs ------------------------===//

#include "compiler/Pipeline.h"

#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"

void mlir::moe::buildCompilePipeline(OpPassManager &pm,
                                     const CompilePipelineOptions &options) {
  MoeSpecializeShapesOptions shapes;
  shapes.batch = options.batch;
  shapes.seq = options.seq;
  pm.addPass(createMoeSpecializeShapes(shapes));
  if (options.fuse)
    pm.addPass(createMoeFuseExperts());
  if (options.train) {
    MoeAutodiffOptions autodiff;
    autodiff.auxLossCoef = options.auxLossCoef;
    autodiff.zLossCoef = options.zLossCoef;
    autodiff.recompute = options.recompute;
    pm.addPass(createMoeAutodiff(autodiff));
  }
}

void mlir::moe::registerCompilePipeline() {
  PassPipelineRegistration<CompilePipelineOptions>(
      "moe-compile",
      "what moec compile runs: moe-specialize-shapes, moe-fuse-experts "
      "(unless fuse=false) and, with train, moe-autodiff",
      buildCompilePipeline);
}
