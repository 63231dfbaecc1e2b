//===- Pipeline.cpp - the passes moec compile runs ------------------------===//

#include "compiler/Pipeline.h"

#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"

void mlir::moe::buildCompilePipeline(OpPassManager &pm,
                                     const CompilePipelineOptions &options) {
  if (options.generate) {
    MoeGenerateOptions generate;
    generate.batch = options.batch;
    generate.seq = options.seq;
    generate.prefill = options.prefill;
    pm.addPass(createMoeGenerate(generate));
  } else {
    MoeSpecializeShapesOptions shapes;
    shapes.batch = options.batch;
    shapes.seq = options.seq;
    pm.addPass(createMoeSpecializeShapes(shapes));
  }
  if (options.fuse)
    pm.addPass(createMoeFuseExperts());
  if (options.ranks > 1) {
    MoeExpertParallelOptions parallel;
    parallel.ranks = options.ranks;
    parallel.expertParallel = options.expertParallel;
    pm.addPass(createMoeExpertParallel(parallel));
  }
  if (options.train) {
    MoeAutodiffOptions autodiff;
    autodiff.auxLossCoef = options.auxLossCoef;
    autodiff.zLossCoef = options.zLossCoef;
    autodiff.recompute = options.recompute;
    autodiff.keepExpertHidden = options.keepExpertHidden;
    pm.addPass(createMoeAutodiff(autodiff));
  }
}

void mlir::moe::registerCompilePipeline() {
  PassPipelineRegistration<CompilePipelineOptions>(
      "moe-compile",
      "what moec compile runs: moe-specialize-shapes (with generate, "
      "moe-generate), moe-fuse-experts (unless fuse=false) and, with train, "
      "moe-autodiff",
      buildCompilePipeline);
}
