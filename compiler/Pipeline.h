//===- Pipeline.h - the passes moec compile runs ----------------*- C++ -*-===//
//
// One definition of the compile pipeline, used by `moec compile` and
// registered for moe-opt as `moe-compile`, so that both run the same passes.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PIPELINE_H
#define MOEC_PIPELINE_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::moe {

struct CompilePipelineOptions
    : public PassPipelineOptions<CompilePipelineOptions> {
  Option<int64_t> batch{*this, "batch", llvm::cl::desc("batch size"),
                        llvm::cl::init(1)};
  Option<int64_t> seq{*this, "seq", llvm::cl::desc("sequence length"),
                      llvm::cl::init(128)};
  Option<bool> fuse{*this, "fuse",
                    llvm::cl::desc("fuse each MoE block (moe-fuse-experts)"),
                    llvm::cl::init(true)};
  Option<int64_t> ranks{*this, "ranks",
                        llvm::cl::desc("processes the run will have "
                                       "(moe-expert-parallel when above 1)"),
                        llvm::cl::init(1)};
  Option<int64_t> expertParallel{
      *this, "expert-parallel",
      llvm::cl::desc("moe-expert-parallel's expert-parallel (0: ranks)"),
      llvm::cl::init(0)};
  Option<bool> train{*this, "train",
                     llvm::cl::desc("add the training step (moe-autodiff)"),
                     llvm::cl::init(false)};
  Option<bool> generate{
      *this, "generate",
      llvm::cl::desc("build the generation programs (moe-generate) instead "
                     "of a forward at [batch, seq]"),
      llvm::cl::init(false)};
  Option<int64_t> prefill{*this, "prefill",
                          llvm::cl::desc("moe-generate's prefill"),
                          llvm::cl::init(0)};
  Option<double> auxLossCoef{*this, "aux-loss-coef",
                             llvm::cl::desc("moe-autodiff's aux-loss-coef"),
                             llvm::cl::init(-1.0)};
  Option<double> zLossCoef{*this, "z-loss-coef",
                           llvm::cl::desc("moe-autodiff's z-loss-coef"),
                           llvm::cl::init(0.0)};
  Option<bool> recompute{*this, "recompute",
                         llvm::cl::desc("moe-autodiff's recompute"),
                         llvm::cl::init(false)};
  Option<bool> keepExpertHidden{
      *this, "keep-expert-hidden",
      llvm::cl::desc("moe-autodiff's keep-expert-hidden"),
      llvm::cl::init(false)};
};

/// Static shapes (or, to generate, the prefill and decode programs), then
/// fused MoE blocks, then (ranks > 1) their experts split over the ranks,
/// then (train) the training step.
void buildCompilePipeline(OpPassManager &pm,
                          const CompilePipelineOptions &options);

/// Registers the pipeline as `moe-compile`.
void registerCompilePipeline();

} // namespace mlir::moe

#endif // MOEC_PIPELINE_H
