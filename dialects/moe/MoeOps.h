//===- MoeOps.h - moe operations --------------------------------*- C++ -*-===//

#ifndef MOE_MOEOPS_H
#define MOE_MOEOPS_H

#include "dialects/moe/MoeAttrs.h"
#include "dialects/moe/MoeDialect.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/moe/MoeInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/moe/MoeOps.h.inc"

#endif // MOE_MOEOPS_H
