//===- ExampleOps.td - an example dialect plugin -----------*- tablegen -*-===//
//
// A dialect of one op, built as a user's out-of-tree dialect would be: it
// includes moec's op interfaces so that moe-autodiff can differentiate it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_EXAMPLE_OPS_TD
#define MOE_EXAMPLE_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "dialects/moe/MoeInterfaces.td"

def Example_Dialect : Dialect {
  let name = "moe_example";
  let summary = "an example dialect plugin for moec";
  let cppNamespace = "::moe_example";
}

def Example_ScaledResidualOp : Op<Example_Dialect, "scaled_residual",
    [Pure, AllTypesMatch<["residual", "update", "result"]>,
     DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "residual connection with a scaled branch";
  let description = [{
    `result = residual + scale * update`, the scaled residual of deep-norm
    style transformers. Differentiable through moec's op interface; the
    `moe-example-lower` pass rewrites it into `moe` ops for the runtime.
  }];
  let arguments = (ins AnyRankedTensor:$residual, AnyRankedTensor:$update,
                       F64Attr:$scale);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$residual `,` $update attr-dict `:` type($result)";
}

#endif // MOE_EXAMPLE_OPS_TD
