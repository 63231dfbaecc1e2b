//===- moec.cpp - the moec compiler driver --------------------------------===//
//
//   moec import PATH [-o FILE] [--dtype f32|bf16|f16]
//   moec stats PATH [--seq-len N]
//   moec compile PATH -o MODEL.moex [--batch B] [--seq S] [--dtype f32|bf16]
//       [--report]
//
// PATH is a Hugging Face config.json, a directory holding one, or a .mlir
// file in the moe dialect. Errors print as one `file:line:col: error: ...`
// line and the tool exits non-zero; outputs are written to a temporary file
// and renamed, so a failed run never leaves a partial file behind.
//
//===----------------------------------------------------------------------===//

#include "compiler/Pipeline.h"
#include "compiler/Registration.h"
#include "compiler/artifact/WriteArtifact.h"
#include "compiler/import/HFConfig.h"
#include "compiler/import/ImportModel.h"
#include "compiler/moec/CompileReport.h"
#include "compiler/moec/ParallelPlan.h"
#include "compiler/support/ToolOutput.h"
#include "passes/ModelStats.h"
#include "passes/Passes.h"
#include "runtime/base/PathOverlap.h"
#include "runtime/base/Printable.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
namespace cl = llvm::cl;

namespace {
// The command is the first argument; options are shared so that MLIR's own
// flags (--mlir-timing, --mlir-print-ir-after-all, ...) work with every one.
cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<config.json | model dir | file.mlir>"));
cl::opt<std::string> outputPath("o",
                                cl::desc("output file (import: default stdout; "
                                         "compile: required)"),
                                cl::value_desc("file"), cl::init("-"));
cl::opt<std::string>
    dtypeName("dtype",
              cl::desc("element type of parameters: f32, bf16 or f16 "
                       "(default: the config's torch_dtype)"),
              cl::init(""));
cl::opt<int64_t> seqLen("seq-len",
                        cl::desc("stats: sequence length at which attention "
                                 "FLOPs are counted"),
                        cl::init(4096));
cl::opt<int64_t> batchSize("batch", cl::desc("compile: batch size"),
                           cl::init(1));
cl::opt<int64_t> seqLength("seq", cl::desc("compile: sequence length"),
                           cl::init(128));
// compile --mode train: the options of the moe-autodiff pass.
cl::opt<std::string> mode("mode",
                          cl::desc("compile: inference | train (adds the "
                                   "training step) | generate (prefill and "
                                   "decode programs over a KV cache)"),
                          cl::init("inference"));
cl::opt<int64_t> prefillRows("prefill",
                             cl::desc("compile --mode generate: prompt rows "
                                      "per prefill run (default: --seq)"),
                             cl::init(0));
cl::opt<double> auxLossCoef("aux-loss-coef",
                            cl::desc("compile --mode train: load-balancing "
                                     "loss weight (default: the config's)"),
                            cl::init(-1.0));
cl::opt<double> zLossCoef("z-loss-coef",
                          cl::desc("compile --mode train: router z-loss weight"),
                          cl::init(0.0));
cl::opt<int64_t> ranks("ranks",
                       cl::desc("compile: processes the run will have (mpirun "
                                "-np N); the experts are split over them"),
                       cl::init(1));
cl::opt<int64_t> expertParallel(
    "expert-parallel",
    cl::desc("compile --ranks N: ranks that split each block's experts "
             "(default N; the rest replicate them, data-parallel)"),
    cl::init(0));
// plan: the cluster.
cl::opt<int64_t> gpus("gpus", cl::desc("plan: GPUs in all"), cl::init(0));
cl::opt<int64_t> gpusPerNode("gpus-per-node",
                             cl::desc("plan: GPUs per node (default: the "
                                      "topology's, 8)"),
                             cl::init(0));
cl::opt<int64_t> globalBatch(
    "global-batch",
    cl::desc("plan: sequences per optimizer step over all GPUs (default: "
             "one micro-batch of --batch per GPU)"),
    cl::init(0));
cl::opt<std::string> topologyPath(
    "topology", cl::desc("plan: JSON file of link bandwidths, GPU memory and "
                         "GEMM rate (default: an H100 SXM node)"),
    cl::init(""));
cl::opt<bool> noFuse("no-fuse",
                     cl::desc("compile: keep each MoE block as router, "
                              "dispatch, expert_mlp and combine"),
                     cl::init(false));
cl::opt<bool> report("report",
                     cl::desc("compile: also print the passes' times, the "
                              "kernels chosen and the planned memory"),
                     cl::init(false));
cl::opt<bool> recompute("recompute",
                        cl::desc("compile --mode train: recompute per-token "
                                 "ops in the backward pass"),
                        cl::init(false));
cl::opt<bool> f32Activations(
    "f32-activations",
    cl::desc("compile: store every activation in fp32, also those that a "
             "bf16 model only reads rounded to bf16"),
    cl::init(false));
cl::opt<bool> keepExpertHidden(
    "keep-expert-hidden",
    cl::desc("compile --mode train: fused MoE blocks keep their experts' "
             "hidden states for the backward pass instead of recomputing "
             "them"),
    cl::init(false));
// upcycle: the options of the moe-upcycle pass.
cl::opt<int64_t> numExperts("experts", cl::desc("upcycle: experts per layer"),
                            cl::init(8));
cl::opt<int64_t> topK("top-k", cl::desc("upcycle: experts per token"),
                      cl::init(2));
cl::opt<std::string> method("method",
                            cl::desc("upcycle: drop | naive | noise | scratch"),
                            cl::init("drop"));
cl::opt<double> ratio("ratio",
                      cl::desc("upcycle: fraction of neurons re-initialised"),
                      cl::init(0.5));
cl::opt<int64_t> seed("seed", cl::desc("upcycle: random seed"), cl::init(1234));
cl::opt<std::string> indexSets("index-sets",
                               cl::desc("upcycle: per-matrix | shared"),
                               cl::init("per-matrix"));
cl::opt<std::string> routerInit("router-init",
                                cl::desc("upcycle: uniform | normal"),
                                cl::init("uniform"));
cl::opt<std::string> layers("layers",
                            cl::desc("upcycle: all | every-other | a list"),
                            cl::init("all"));
cl::opt<int64_t> granularity(
    "granularity", cl::desc("upcycle: fine experts per copied FFN"),
    cl::init(1));
cl::opt<bool> sharedExpert(
    "shared-expert",
    cl::desc("upcycle: keep the dense FFN as a shared expert (Qwen2-MoE)"),
    cl::init(false));
cl::opt<std::string> maxShardSize(
    "max-shard-size",
    cl::desc("upcycle: largest weights file of the output (5GB, 500MB, "
             "2GiB, bytes; 0: one file), as transformers shards"),
    cl::init("5GB"));

const char *programPath = nullptr;

constexpr const char *kUsage = R"(moec: compiler for Mixture-of-Experts models

  moec import PATH [-o FILE] [--dtype f32|bf16|f16]
      import a Hugging Face config and print the module
  moec stats PATH [--seq-len N] [--dtype ...]
      parameter counts and FLOPs per token, from an analysis of the module
  moec compile PATH -o MODEL.moex [--batch B] [--seq S] [--dtype f32|bf16]
      [--mode inference|train|generate] [--aux-loss-coef A] [--z-loss-coef Z]
      [--recompute] [--keep-expert-hidden] [--prefill N] [--no-fuse]
      [--f32-activations] [--report]
      [--ranks N [--expert-parallel E]]
      compile to an artifact for moe-run (with --mode train, also the
      training step for moe-run train; with --mode generate, prefill and
      decode programs for moe-run generate, where --seq is the context
      capacity and --prefill the prompt rows per prefill run); activations
      that a bf16 model reads only rounded to bf16 are stored as bf16 unless
      --f32-activations; --report adds each pass's time,
      the kernels chosen and the planned memory by kind (for training, the
      activations kept for backward, per layer and per token); --ranks plans
      for `mpirun -np N moe-run`, E ranks splitting each block's experts
      (--batch is then each rank's batch and the sizes printed are per rank)
  moec plan PATH --gpus N [--gpus-per-node G] [--topology FILE]
      [--batch B] [--seq-len S] [--global-batch SEQUENCES]
      for each expert-parallel x data-parallel split of N GPUs: memory per
      GPU, all-to-all and all-reduce bytes per step, a step-time estimate,
      and the layout it would choose (docs/parallel.md has the model)
  moec upcycle DENSE_DIR -o MOE_DIR [--experts 8] [--top-k 2]
      [--method drop|naive|noise|scratch] [--ratio 0.5] [--seed 1234]
      [--index-sets per-matrix|shared] [--router-init uniform|normal]
      [--layers all|every-other|LIST] [--granularity 1] [--shared-expert]
      [--max-shard-size 5GB]
      Drop-Upcycling: a dense Llama (Qwen2, Qwen3) checkpoint to a Mixtral
      (Qwen2-MoE, Qwen3-MoE) checkpoint, sharded as transformers'
      save_pretrained shards

PATH is a config.json, a directory holding one, or a .mlir file.
)";

/// Prints every diagnostic as one line: `file:line:col: severity: message`.
LogicalResult printOneLine(Diagnostic &diagnostic) {
  llvm::raw_ostream &os = llvm::errs();
  if (auto file = diagnostic.getLocation()->findInstanceOf<FileLineColLoc>()) {
    os << file.getFilename().getValue();
    if (file.getLine() > 0)
      os << ":" << file.getLine() << ":" << file.getColumn();
    os << ": ";
  }
  switch (diagnostic.getSeverity()) {
  case DiagnosticSeverity::Error:
    os << "error: ";
    break;
  case DiagnosticSeverity::Warning:
    os << "warning: ";
    break;
  case DiagnosticSeverity::Note:
    os << "note: ";
    break;
  case DiagnosticSeverity::Remark:
    os << "remark: ";
    break;
  }
  // What the diagnostic quotes from the input is escaped here, once.
  os << moert::printable(diagnostic.str()) << "\n";
  return success();
}

FailureOr<Type> parseDtype(MLIRContext *context) {
  if (dtypeName.empty())
    return Type();
  StringRef name = dtypeName;
  if (name == "f32")
    return Type(Float32Type::get(context));
  if (name == "bf16")
    return Type(BFloat16Type::get(context));
  if (name == "f16")
    return Type(Float16Type::get(context));
  return emitError(UnknownLoc::get(context))
         << "--dtype: expected f32, bf16 or f16, got '" << name << "'";
}

/// Loads PATH as MLIR (by its .mlir extension) or imports it as a HF config,
/// then verifies the result.
OwningOpRef<ModuleOp> loadModel(StringRef path, MLIRContext *context) {
  OwningOpRef<ModuleOp> module;
  if (llvm::sys::path::extension(path) == ".mlir") {
    if (!dtypeName.empty()) {
      emitError(UnknownLoc::get(context))
          << "--dtype applies to configs, not to .mlir input";
      return nullptr;
    }
    llvm::SourceMgr sources;
    module = parseSourceFile<ModuleOp>(path, sources, ParserConfig(context));
  } else {
    FailureOr<moe::HFConfig> config = moe::loadHFConfig(path, context);
    FailureOr<Type> dtype = parseDtype(context);
    if (failed(config) || failed(dtype))
      return nullptr;
    module = moe::importModel(*config, context, *dtype);
  }
  if (!module || failed(verify(*module)))
    return nullptr;
  return module;
}

int runImport(MLIRContext *context) {
  OwningOpRef<ModuleOp> module = loadModel(inputPath, context);
  if (!module)
    return 1;
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  if (llvm::Error written = moe::writeOutputFile(outputPath, text)) {
    llvm::errs() << "moec import: error: " << llvm::toString(std::move(written))
                 << "\n";
    return 1;
  }
  return 0;
}

int runCompile(MLIRContext *context) {
  if (outputPath == "-") {
    llvm::errs() << "moec compile: error: -o MODEL.moex is required\n";
    return 1;
  }
  OwningOpRef<ModuleOp> module = loadModel(inputPath, context);
  if (!module)
    return 1;
  std::vector<moe::PassTime> passTimes; // outlives pm, which records them
  PassManager pm(context);
  if (failed(applyPassManagerCLOptions(pm)))
    return 1;
  applyDefaultTimingPassManagerCLOptions(pm);
  if (report)
    pm.addInstrumentation(std::make_unique<moe::PassTimer>(passTimes));
  if (mode != "train" && mode != "inference" && mode != "generate") {
    llvm::errs() << "moec compile: error: --mode must be inference, train or "
                 << "generate, got '" << mode << "'\n";
    return 1;
  }
  if (prefillRows < 0 || prefillRows > seqLength ||
      (prefillRows > 0 && mode != "generate")) {
    llvm::errs() << "moec compile: error: --prefill must be in [1, --seq "
                 << seqLength << "] and needs --mode generate, got "
                 << prefillRows << "\n";
    return 1;
  }
  // Options of the training step, not silently ignored elsewhere.
  for (auto [name, given] :
       {std::pair{"--recompute", bool(recompute)},
        std::pair{"--keep-expert-hidden", bool(keepExpertHidden)},
        std::pair{"--aux-loss-coef", auxLossCoef.getNumOccurrences() > 0},
        std::pair{"--z-loss-coef", zLossCoef.getNumOccurrences() > 0}})
    if (given && mode != "train") {
      llvm::errs() << "moec compile: error: " << name
                   << " applies to --mode train\n";
      return 1;
    }
  for (auto [name, value] : {std::pair{"--aux-loss-coef", double(auxLossCoef)},
                             std::pair{"--z-loss-coef", double(zLossCoef)}})
    if (!std::isfinite(value)) {
      llvm::errs() << "moec compile: error: " << name
                   << " must be a finite number, got " << value << "\n";
      return 1;
    }
  if (ranks < 1 || ranks > 65536 || expertParallel < 0) {
    llvm::errs() << "moec compile: error: --ranks must be in [1, 65536] and "
                    "--expert-parallel positive, got --ranks "
                 << ranks << " and --expert-parallel " << expertParallel
                 << "\n";
    return 1;
  }
  if (batchSize < 1 || seqLength < 1 ||
      batchSize > (int64_t(1) << 31) / seqLength) {
    llvm::errs() << "moec compile: error: --batch and --seq must be >= 1 with "
                    "--batch x --seq at most 2^31 tokens, got --batch "
                 << batchSize << " and --seq " << seqLength << "\n";
    return 1;
  }
  moe::CompilePipelineOptions options;
  options.batch = batchSize;
  options.seq = seqLength;
  options.fuse = !noFuse;
  options.ranks = ranks;
  options.expertParallel = expertParallel;
  options.train = mode == "train";
  options.generate = mode == "generate";
  options.prefill = prefillRows;
  options.auxLossCoef = auxLossCoef;
  options.zLossCoef = zLossCoef;
  options.recompute = recompute;
  options.keepExpertHidden = keepExpertHidden;
  moe::buildCompilePipeline(pm, options);
  if (failed(pm.run(*module)))
    return 1;
  FailureOr<moe::ArtifactSummary> summary =
      moe::writeArtifact(*module, outputPath,
                         moe::ActivationStorage{/*bf16=*/!f32Activations});
  if (failed(summary))
    return 1;
  llvm::outs() << "artifact: " << outputPath << "\n";
  if (ranks > 1)
    llvm::outs() << "ranks: " << ranks << "\n"
                 << "expert_parallel: "
                 << (expertParallel > 0 ? int64_t(expertParallel)
                                        : int64_t(ranks))
                 << "\n";
  llvm::outs() << "batch: " << batchSize << "\n"
               << "seq: " << seqLength << "\n"
               << "kernels: " << summary->kernels << "\n"
               << "params: " << summary->params << "\n"
               << "param_bytes: " << summary->paramBytes << "\n"
               << "activation_peak_bytes: " << summary->arenaBytes << "\n"
               << "activation_bytes_without_reuse: "
               << summary->unplannedBytes << "\n";
  if (mode == "generate")
    llvm::outs() << "prefill_rows: " << (prefillRows ? prefillRows : seqLength)
                 << "\n"
                 << "kv_cache_bytes: " << summary->cacheBytes << "\n";
  if (summary->initArenaBytes > 0)
    llvm::outs() << "initialization_peak_bytes: " << summary->initArenaBytes
                 << "\n";
  if (summary->trainArenaBytes > 0) {
    // Per token and layer, as Megatron-Core's activation formula counts.
    int64_t layers = moe::modelLayers(*module);
    int64_t activations = summary->trainActivationBytes;
    llvm::outs() << "training_arena_bytes: " << summary->trainArenaBytes
                 << "\n"
                 << "training_activation_peak_bytes: " << activations << "\n"
                 << "training_activation_bytes_per_token_per_layer: "
                 << activations / (batchSize * seqLength * layers) << "\n"
                 << "training_gradient_and_loss_bytes: "
                 << summary->trainResultBytes << "\n"
                 << "training_activation_bytes_without_reuse: "
                 << summary->trainUnplannedBytes << "\n";
  }
  if (report)
    moe::printCompileReport(*summary, passTimes, llvm::outs());
  return 0;
}

/// Upcycles through the same pieces a user would chain by hand: import,
/// moe-upcycle, an artifact whose initialisation program derives the experts,
/// and moe-run executing it to write the checkpoint (atomically).
int runUpcycle(MLIRContext *context) {
  if (outputPath == "-") {
    llvm::errs() << "moec upcycle: error: -o MOE_DIR is required\n";
    return 1;
  }
  llvm::SmallString<256> denseDir(inputPath);
  if (!llvm::sys::fs::is_directory(denseDir))
    llvm::sys::path::remove_filename(denseDir);
  if (denseDir.empty())
    denseDir = ".";
  FailureOr<moe::HFConfig> config = moe::loadHFConfig(denseDir, context);
  if (failed(config))
    return 1;
  if (config->isMoe()) {
    llvm::errs() << denseDir << ": error: the source is already a Mixture of "
                 << "Experts (" << config->architectureName
                 << "); upcycling needs a dense model\n";
    return 1;
  }
  OwningOpRef<ModuleOp> module = moe::importModel(*config, context);
  PassManager pm(context);
  if (failed(applyPassManagerCLOptions(pm)))
    return 1;
  moe::MoeUpcycleOptions upcycle;
  upcycle.experts = numExperts;
  upcycle.topK = topK;
  upcycle.method = method;
  upcycle.ratio = ratio;
  upcycle.seed = seed;
  upcycle.indexSets = indexSets;
  upcycle.routerInit = routerInit;
  upcycle.layers = layers;
  upcycle.granularity = granularity;
  upcycle.sharedExpert = sharedExpert;
  pm.addPass(moe::createMoeUpcycle(upcycle));
  moe::MoeSpecializeShapesOptions shapes;
  shapes.batch = 1;
  shapes.seq = 1;
  pm.addPass(moe::createMoeSpecializeShapes(shapes));
  if (failed(pm.run(*module)))
    return 1;

  llvm::SmallString<256> artifact;
  if (std::error_code error =
          llvm::sys::fs::createTemporaryFile("moec-upcycle", "moex", artifact)) {
    llvm::SmallString<256> directory;
    llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, directory);
    llvm::errs() << "moec upcycle: error: cannot create a temporary file in "
                 << directory << " (TMPDIR): " << error.message() << "\n";
    return 1;
  }
  llvm::scope_exit cleanup([&] { llvm::sys::fs::remove(artifact); });
  if (failed(moe::writeArtifact(*module, artifact)))
    return 1;

  // moe-run sits next to moec.
  std::string self = llvm::sys::fs::getMainExecutable(
      programPath, reinterpret_cast<void *>(&runUpcycle));
  llvm::SmallString<256> moeRun(llvm::sys::path::parent_path(self));
  llvm::sys::path::append(moeRun, "moe-run");
  llvm::SmallVector<llvm::StringRef> args = {
      moeRun,       artifact,   "--init-from",      denseDir,
      "--save-weights", outputPath, "--max-shard-size", maxShardSize};
  std::string message;
  int status = llvm::sys::ExecuteAndWait(moeRun, args, std::nullopt, {}, 0, 0,
                                         &message);
  if (status != 0) {
    if (!message.empty())
      llvm::errs() << "moec upcycle: error: " << moeRun << ": " << message
                   << "\n";
    return 1;
  }
  return 0;
}

int runPlan(MLIRContext *context) {
  OwningOpRef<ModuleOp> module = loadModel(inputPath, context);
  if (!module)
    return 1;
  if (gpus < 1 || gpus > 1000000 || gpusPerNode < 0 || batchSize < 1 ||
      seqLen < 1 || seqLen > (int64_t(1) << 31)) {
    llvm::errs() << "moec plan: error: needs --gpus in [1, 10^6], "
                    "--gpus-per-node >= 1, --batch >= 1 and --seq-len >= 1\n";
    return 1;
  }
  moe::Topology topology;
  if (!topologyPath.empty()) {
    llvm::Expected<moe::Topology> read =
        moe::readTopology(topologyPath, topology);
    if (!read) {
      llvm::errs() << "moec plan: error: " << llvm::toString(read.takeError())
                   << "\n";
      return 1;
    }
    topology = *read;
  }
  if (gpusPerNode > 0)
    topology.gpusPerNode = gpusPerNode;
  FailureOr<moe::ModelStats> stats = moe::computeModelStats(*module, seqLen);
  if (failed(stats))
    return 1;
  moe::PlanInput input;
  input.stats = *stats;
  input.gpus = gpus;
  input.microBatch = batchSize;
  int64_t perStep = gpus * batchSize;
  if (globalBatch > 0 && globalBatch % perStep != 0) {
    llvm::errs() << "moec plan: error: --global-batch " << globalBatch
                 << " is not a multiple of --gpus x --batch = " << perStep
                 << "\n";
    return 1;
  }
  input.microBatches = globalBatch > 0 ? globalBatch / perStep : 1;
  auto config = (*module)->getAttrOfType<DictionaryAttr>("moe.hf_config");
  auto field = [&](StringRef name) -> int64_t {
    auto value = config ? config.getAs<IntegerAttr>(name) : IntegerAttr();
    return value ? value.getInt() : 0;
  };
  input.hidden = field("hidden_size");
  input.expertWidth = field("moe_intermediate_size")
                          ? field("moe_intermediate_size")
                          : field("intermediate_size");
  if (auto name = config ? config.getAs<StringAttr>("architecture") : nullptr)
    input.model = name.getValue().str();
  if (input.hidden <= 0 || input.expertWidth <= 0) {
    llvm::errs() << "moec plan: error: " << inputPath
                 << ": needs a Hugging Face config (hidden_size and the "
                    "experts' intermediate size)\n";
    return 1;
  }
  moe::printPlan(input, topology, moe::planLayouts(input, topology),
                 llvm::outs());
  return 0;
}

int runStats(MLIRContext *context) {
  OwningOpRef<ModuleOp> module = loadModel(inputPath, context);
  if (!module)
    return 1;
  if (seqLen < 1 || seqLen > (int64_t(1) << 31)) {
    llvm::errs() << "moec stats: error: --seq-len must be in [1, 2^31], got "
                 << seqLen << "\n";
    return 1;
  }
  FailureOr<moe::ModelStats> stats = moe::computeModelStats(*module, seqLen);
  if (failed(stats))
    return 1;
  if (auto config = (*module)->getAttrOfType<DictionaryAttr>("moe.hf_config"))
    if (auto name = config.getAs<StringAttr>("architecture"))
      llvm::outs() << "architecture: " << name.getValue() << "\n";
  moe::printModelStats(*stats, llvm::outs());
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  moe::installToolErrorHandling("moec");
  programPath = argv[0];
  StringRef command = argc > 1 ? StringRef(argv[1]) : StringRef();
  auto run = llvm::StringSwitch<int (*)(MLIRContext *)>(command)
                 .Case("import", runImport)
                 .Case("stats", runStats)
                 .Case("plan", runPlan)
                 .Case("compile", runCompile)
                 .Case("upcycle", runUpcycle)
                 .Default(nullptr);
  if (!run) {
    bool help = command == "--help" || command == "-h" || command == "help";
    (help ? llvm::outs() : llvm::errs())
        << (help || command.empty()
                ? std::string(kUsage)
                : "moec: error: unknown command '" + command.str() +
                      "'; expected import, stats, plan, compile or upcycle\n");
    return help ? 0 : 1;
  }

  registerMLIRContextCLOptions();
  registerAsmPrinterCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  moe::registerAllMoecPasses();
  // The command name stands in for the program name, as in git.
  std::string program = ("moec " + command).str();
  std::vector<const char *> args = {program.c_str()};
  args.insert(args.end(), argv + 2, argv + argc);
  // LLVM reports a bad flag over several lines, each behind the program
  // name; moec's errors are one line.
  std::string flagErrors;
  llvm::raw_string_ostream flagErrorStream(flagErrors);
  if (!cl::ParseCommandLineOptions(args.size(), args.data(), kUsage,
                                   &flagErrorStream)) {
    SmallVector<StringRef> lines;
    StringRef(flagErrors).split(lines, '\n', -1, /*KeepEmpty=*/false);
    std::string joined;
    for (StringRef line : lines) {
      line = line.trim();
      line.consume_front(program + ":");
      joined += (joined.empty() ? "" : "; ") + line.trim().str();
    }
    llvm::errs() << program << ": error: " << moert::printable(joined) << "\n";
    return 1;
  }

  DialectRegistry registry;
  moe::registerAllMoecDialects(registry);
  MLIRContext context(registry);
  context.getDiagEngine().registerHandler(printOneLine);

  // The output replaces its path whole: never the model read, nor a
  // directory holding it.
  if (std::string input = moert::inputOverwrittenBy(
          outputPath, moert::withFilesInside({inputPath}));
      !input.empty()) {
    llvm::errs() << program << ": error: "
                 << moert::overwritesInputMessage(outputPath, input) << "\n";
    return 1;
  }
  return run(&context);
}
