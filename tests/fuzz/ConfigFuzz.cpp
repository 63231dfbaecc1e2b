//===- ConfigFuzz.cpp - HF config.json import through to verified IR ------===//
//
// Parses the input as a config.json (the loader moec import and compile
// use), imports the model it describes into the moe dialect and verifies
// the module. Diagnostics are the expected outcome of most inputs and are
// dropped; what must not happen is a crash, a hang or undefined behaviour.
//
//===----------------------------------------------------------------------===//

#include "compiler/Registration.h"
#include "compiler/import/HFConfig.h"
#include "compiler/import/ImportModel.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *context = [] {
    mlir::DialectRegistry registry;
    mlir::moe::registerAllMoecDialects(registry);
    auto *created = new mlir::MLIRContext(registry);
    created->loadAllAvailableDialects();
    return created;
  }();
  mlir::ScopedDiagnosticHandler quiet(
      context, [](mlir::Diagnostic &) { return mlir::success(); });
  std::string text(reinterpret_cast<const char *>(data), size);
  mlir::FailureOr<mlir::moe::HFConfig> config =
      mlir::moe::parseHFConfig("config.json", text, context);
  if (mlir::failed(config))
    return 0;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::moe::importModel(*config, context, mlir::Type());
  if (module)
    (void)mlir::verify(*module);
  return 0;
}
