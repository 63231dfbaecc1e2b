//===- MoeDialect.h - the moe dialect ---------------------------*- C++ -*-===//

#ifndef MOE_MOEDIALECT_H
#define MOE_MOEDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/moe/MoeDialect.h.inc"

#endif // MOE_MOEDIALECT_H
