//===- moec.cpp - the moec compiler driver --------------------------------===//
//
//   moec import PATH [-o FILE] [--dtype f32|bf16|f16]
//   moec stats PATH [--seq-len N]
//   moec compile PATH -o MODEL.moex [--batch B] [--seq S] [--dtype f32|bf16]
//
// PATH is a Hugging Face config.json, a directory holding one, or a .mlir
// file in the moe dialect. Errors print as one `file:line:col: error: ...`
// line and the tool exits non-zero; outputs are written to a temporary file
// and renamed, so a failed run never leaves a partial file behind.
//
//===----------------------------------------------------------------------===//

#include "compiler/Registration.h"
#include "compiler/artifact/WriteArtifact.h"
#include "compiler/import/HFConfig.h"
#include "compiler/import/ImportModel.h"
#include "passes/ModelStats.h"
#include "passes/Passes.h"

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
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

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

constexpr const char *kUsage = R"(moec: compiler for Mixture-of-Experts models

  moec import PATH [-o FILE] [--dtype f32|bf16|f16]
      import a Hugging Face config and print the module
  moec stats PATH [--seq-len N] [--dtype ...]
      parameter counts and FLOPs per token, from an analysis of the module
  moec compile PATH -o MODEL.moex [--batch B] [--seq S] [--dtype f32|bf16]
      compile to an artifact for moe-run

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
  os << diagnostic << "\n";
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
  llvm::Error written =
      llvm::writeToOutput(outputPath, [&](llvm::raw_ostream &os) {
        module->print(os);
        return llvm::Error::success();
      });
  if (written) {
    llvm::errs() << outputPath << ": error: cannot write: "
                 << llvm::toString(std::move(written)) << "\n";
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
  PassManager pm(context);
  if (failed(applyPassManagerCLOptions(pm)))
    return 1;
  applyDefaultTimingPassManagerCLOptions(pm);
  moe::MoeSpecializeShapesOptions shapes;
  shapes.batch = batchSize;
  shapes.seq = seqLength;
  pm.addPass(moe::createMoeSpecializeShapes(shapes));
  if (failed(pm.run(*module)))
    return 1;
  FailureOr<moe::ArtifactSummary> summary =
      moe::writeArtifact(*module, outputPath);
  if (failed(summary))
    return 1;
  llvm::outs() << "artifact: " << outputPath << "\n"
               << "batch: " << batchSize << "\n"
               << "seq: " << seqLength << "\n"
               << "kernels: " << summary->kernels << "\n"
               << "params: " << summary->params << "\n"
               << "param_bytes: " << summary->paramBytes << "\n"
               << "activation_peak_bytes: " << summary->arenaBytes << "\n"
               << "activation_bytes_without_reuse: "
               << summary->unplannedBytes << "\n";
  return 0;
}

int runStats(MLIRContext *context) {
  OwningOpRef<ModuleOp> module = loadModel(inputPath, context);
  if (!module)
    return 1;
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
  StringRef command = argc > 1 ? StringRef(argv[1]) : StringRef();
  auto run = llvm::StringSwitch<int (*)(MLIRContext *)>(command)
                 .Case("import", runImport)
                 .Case("stats", runStats)
                 .Case("compile", runCompile)
                 .Default(nullptr);
  if (!run) {
    bool help = command == "--help" || command == "-h" || command == "help";
    (help ? llvm::outs() : llvm::errs())
        << (help || command.empty()
                ? std::string(kUsage)
                : "moec: error: unknown command '" + command.str() +
                      "'; expected import, stats or compile\n");
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
  cl::ParseCommandLineOptions(args.size(), args.data(), kUsage);

  DialectRegistry registry;
  moe::registerAllMoecDialects(registry);
  MLIRContext context(registry);
  context.getDiagEngine().registerHandler(printOneLine);

  return run(&context);
}
