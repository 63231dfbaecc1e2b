//===- moec.cpp - the moec compiler driver --------------------------------===//
//
//   moec import PATH [-o FILE] [--dtype f32|bf16|f16]
//   moec stats PATH [--seq-len N]
//
// PATH is a Hugging Face config.json, a directory holding one, or a .mlir
// file in the moe dialect. Errors print as one `file:line:col: error: ...`
// line and the tool exits non-zero; outputs are written to a temporary file
// and renamed, so a failed run never leaves a partial file behind.
//
//===----------------------------------------------------------------------===//

#include "compiler/Registration.h"
#include "compiler/import/HFConfig.h"
#include "compiler/import/ImportModel.h"
#include "passes/ModelStats.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {
cl::SubCommand importCommand("import",
                             "Import a Hugging Face config into the moe dialect "
                             "and print the module");
cl::SubCommand statsCommand("stats",
                            "Print parameter counts and FLOPs per token, "
                            "computed from the imported module");

cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<config.json | model dir | file.mlir>"),
                               cl::sub(importCommand), cl::sub(statsCommand));
cl::opt<std::string> outputPath("o", cl::desc("output file (default: stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::sub(importCommand));
cl::opt<std::string>
    dtypeName("dtype",
              cl::desc("element type of parameters and activations: f32, bf16 "
                       "or f16 (default: the config's torch_dtype)"),
              cl::init(""), cl::sub(importCommand), cl::sub(statsCommand));
cl::opt<int64_t> seqLen("seq-len",
                        cl::desc("sequence length at which attention FLOPs "
                                 "are counted"),
                        cl::init(4096), cl::sub(statsCommand));

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
  registerMLIRContextCLOptions();
  registerAsmPrinterCLOptions();
  registerPassManagerCLOptions();
  moe::registerAllMoecPasses();
  cl::ParseCommandLineOptions(argc, argv,
                              "moec: compiler for Mixture-of-Experts models\n");

  DialectRegistry registry;
  moe::registerAllMoecDialects(registry);
  MLIRContext context(registry);
  context.getDiagEngine().registerHandler(printOneLine);

  if (importCommand)
    return runImport(&context);
  if (statsCommand)
    return runStats(&context);
  llvm::errs() << "moec: error: no command given; run 'moec --help'\n";
  return 1;
}
