//===- moe-opt.cpp - run moe passes on MLIR files -------------------------===//
//
// The standard MlirOptMain driver over moec's dialects and passes; plugins
// are loaded with --load-pass-plugin / --load-dialect-plugin.
//
//===----------------------------------------------------------------------===//

#include "compiler/Registration.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::moe::registerAllMoecDialects(registry);
  mlir::moe::registerAllMoecPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "moe dialect optimizer\n", registry));
}
