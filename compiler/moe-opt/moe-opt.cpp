//===- moe-opt.cpp - run moe passes on MLIR files -------------------------===//
//
// The standard MlirOptMain driver over moec's dialects and passes; plugins
// are loaded with --load-pass-plugin / --load-dialect-plugin. A failed write
// of the output is one line and exit 1 (ToolOutput.h); an output path that
// is not a regular file, or is the input, is refused before anything runs.
//
//===----------------------------------------------------------------------===//

#include "compiler/Registration.h"
#include "compiler/support/ToolOutput.h"
#include "runtime/base/PathOverlap.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  mlir::moe::installToolErrorHandling("moe-opt");
  mlir::DialectRegistry registry;
  mlir::moe::registerAllMoecDialects(registry);
  mlir::moe::registerAllMoecPasses();
  auto [input, output] = mlir::registerAndParseCLIOptions(
      argc, argv, "moe dialect optimizer\n", registry);
  if (output != "/dev/null")
    if (llvm::Error refused = mlir::moe::checkOutputPath(output)) {
      llvm::errs() << "moe-opt: error: " << llvm::toString(std::move(refused))
                   << "\n";
      return 1;
    }
  if (std::string overwritten = moert::inputOverwrittenBy(output, {input});
      !overwritten.empty()) {
    llvm::errs() << "moe-opt: error: "
                 << moert::overwritesInputMessage(output, overwritten) << "\n";
    return 1;
  }
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, input, output, registry));
}
