//===- MoeDialect.td - the moe dialect ---------------------*- tablegen -*-===//
//
// The dialect of Mixture-of-Experts decoder language models: one op per
// concept of the model (router, dispatch, expert MLP, combine, ...), on
// tensor values. Parameters are module-level symbols read by value.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_TD
#define MOE_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let summary = "Mixture-of-Experts decoder language models";
  let description = [{
    The `moe` dialect expresses decoder-only transformer language models whose
    feed-forward blocks may be Mixtures of Experts, at the level of the model's
    own concepts: embedding, RMSNorm, linear layers in the Hugging Face weight
    layout `[out, in]`, rotary embeddings, causal grouped-query attention,
    SwiGLU, the router, dropless dispatch, the grouped expert MLP, combine,
    the LM head and the training losses.

    Activations are ranked tensors whose leading dimensions (batch, sequence)
    may be dynamic; feature dimensions are static. Parameters are declared once
    per module with `moe.param` (name, shape, dtype, initialiser) and read
    inside functions with `moe.read_param`, so the parameter table of a model is
    the list of its `moe.param` ops and names are unique by construction.

    Routing is dropless: `moe.dispatch` produces per-expert token counts as a
    run-time tensor, which `moe.expert_mlp` and `moe.combine` consume.
  }];
  let cppNamespace = "::mlir::moe";
  let useDefaultAttributePrinterParser = 1;
}

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, traits>;

class Moe_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Moe_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

#endif // MOE_DIALECT_TD
