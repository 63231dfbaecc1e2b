//===- MoeInterfaces.td - moe op interfaces ----------------*- tablegen -*-===//

#ifndef MOE_INTERFACES_TD
#define MOE_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Moe_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let description = [{
    An op that reverse-mode differentiation (`moe-autodiff`) can pass
    through: it builds its vector-Jacobian product, the gradients of its
    operands from the gradients of its results, at the builder's insertion
    point. The ops it builds may read the op's operands and results (the
    forward values stay live until the backward pass reads them).
  }];
  let cppNamespace = "::mlir::moe";
  let methods = [
    InterfaceMethod<[{
        Appends one gradient per operand to `operandGrads`, a null Value for
        operands that receive none (integer indices, counts). `resultGrads`
        holds one gradient per result, null for results no loss depends on;
        at least one is set.
      }], "::mlir::LogicalResult", "buildVjp",
      (ins "::mlir::OpBuilder &":$builder,
           "::mlir::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>,
  ];
}

#endif // MOE_INTERFACES_TD
