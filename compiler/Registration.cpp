//===- Registration.cpp - what every moec tool knows ----------------------===//

#include "compiler/Registration.h"

#include "compiler/Pipeline.h"

#include "dialects/moe/MoeDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Transforms/Passes.h"

void mlir::moe::registerAllMoecDialects(DialectRegistry &registry) {
  registry.insert<MoeDialect, func::FuncDialect>();
}

void mlir::moe::registerAllMoecPasses() {
  registerMoePasses();
  registerCompilePipeline();
  registerCanonicalizerPass();
  registerCSEPass();
  registerSymbolDCEPass();
  registerInlinerPass();
  registerPrintOpStatsPass();
}
