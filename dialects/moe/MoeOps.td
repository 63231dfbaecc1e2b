//===- MoeOps.td - moe operations --------------------------*- tablegen -*-===//
//
// Shapes use these names: B batch, S sequence, D model width, F expert or FFN
// width, V vocabulary, E experts, K experts per token, H heads, Dh head width,
// T = tokens x K grouped rows. Leading (batch, sequence) dimensions may be
// dynamic; verifiers check every relation whose sizes are static.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_OPS_TD
#define MOE_OPS_TD

include "MoeDialect.td"
include "MoeAttrs.td"
include "MoeInterfaces.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Moe_Float : AnyTypeOf<[F32, BF16, F16]>;
def Moe_FloatTensor : RankedTensorOf<[F32, BF16, F16]>;
def Moe_IndexTensor : RankedTensorOf<[I32, I64]>;
// A signed 64-bit integer attribute: I64Attr reads back unsigned, which would
// turn a bad negative size into a huge one in the verifiers' messages.
def Moe_I64Attr : SignlessIntegerAttrBase<I64, "64-bit signless integer attribute"> {
  let returnType = "int64_t";
  let convertFromStorage = "$_self.getValue().getSExtValue()";
  let constBuilderCall =
      "$_builder.getIntegerAttr($_builder.getIntegerType(64), $0)";
}
def Moe_ScalarLoss : 0DTensorOf<[F32]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getF32Type())">;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def Moe_ParamOp : Moe_Op<"param", [Symbol, HasParent<"ModuleOp">]> {
  let summary = "declare a named model parameter";
  let description = [{
    Declares one parameter of the model: its name (the Hugging Face checkpoint
    name), its shape and dtype, and how it is initialised when no checkpoint
    provides it. Read it inside a function with `moe.read_param`.

    Example:
    ```mlir
    moe.param @"model.norm.weight" : tensor<512xf32> init #moe.constant<1.0>
    moe.param @"lm_head.weight" : tensor<256x512xbf16>
        init #moe.normal<mean = 0.0, std = 0.02>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<Moe_FloatTensor>:$type,
                       Moe_InitializerAttr:$init);
  let assemblyFormat = "$sym_name `:` $type `init` $init attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Moe_ReadParamOp : Moe_Op<"read_param",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "read a parameter's value";
  let description = [{
    Yields the value of the `moe.param` named by `name`; the result type must
    equal the declared type.

    Example:
    ```mlir
    %w = moe.read_param @"model.norm.weight" : tensor<512xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Transformer layers
//===----------------------------------------------------------------------===//

def Moe_EmbeddingOp : Moe_Op<"embedding", [Pure, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "look up token embeddings";
  let description = [{
    `result[b, s, :] = table[ids[b, s], :]`. Ids outside `[0, V)` are a run-time
    error.

    Example:
    ```mlir
    %h = moe.embedding %table[%ids]
        : (tensor<256x64xf32>, tensor<?x?xi32>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$table, Moe_IndexTensor:$ids);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$table `[` $ids `]` attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_RMSNormOp : Moe_Op<"rms_norm",
    [Pure, AllTypesMatch<["input", "result"]>, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "root-mean-square normalisation over groups of the last dimension";
  let description = [{
    `result = input / sqrt(mean(input^2, -1) + epsilon) * weight`, computed in
    fp32 whatever the storage type (as Hugging Face Llama does). The weight's
    size G must divide the input width W: each run of G consecutive features
    is normalised on its own (G = W is the usual norm; G = the head width is
    Qwen3's per-head q/k norm).

    Example:
    ```mlir
    %n = moe.rms_norm %h, %w {epsilon = 1.0e-05 : f64}
        : tensor<?x?x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       F64Attr:$epsilon);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def Moe_LinearOp : Moe_Op<"linear", [Pure, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "linear layer with the weight stored [out, in]";
  let description = [{
    `result[..., o] = sum_i input[..., i] * weight[o, i]`, the layout of
    `torch.nn.Linear` and of Hugging Face checkpoints. No bias (Llama and
    Mixtral have none). Input and weight share the element type.

    Example:
    ```mlir
    %q = moe.linear %x, %wq
        : (tensor<?x?x64xf32>, tensor<96x64xf32>) -> tensor<?x?x96xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_RopeOp : Moe_Op<"rope",
    [Pure, AllTypesMatch<["input", "result"]>, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "rotary position embedding";
  let description = [{
    Rotates each head of `input` ([B, S, H * Dh], heads contiguous) by the
    angle `position * theta^(-2i / Dh)`, pairing element `i` with `i + Dh/2`
    (the Hugging Face `rotate_half` convention). Positions are `0 .. S-1`
    unless a `positions` tensor [B, S] is given (decoding with a cache).
    With `inverse` it rotates by the negated angle: the rotation's transpose,
    which is its vector-Jacobian product.

    Example:
    ```mlir
    %qr = moe.rope %q {num_heads = 4 : i64, theta = 1.0e+04 : f64}
        : tensor<?x?x96xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input,
                       Optional<Moe_IndexTensor>:$positions,
                       Moe_I64Attr:$num_heads, F64Attr:$theta,
                       UnitAttr:$inverse);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`positions` $positions^ `:` type($positions))? attr-dict `:`
    type($input)
  }];
  let hasVerifier = 1;
}

def Moe_AttentionOp : Moe_Op<"attention",
    [Pure, AllTypesMatch<["query", "result"]>, AllTypesMatch<["key", "value"]>,
     DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "scaled dot-product self-attention with grouped KV heads";
  let description = [{
    `query` is [B, S, H * Dh], `key` and `value` are [B, S, Hkv * Dh] with H a
    multiple of Hkv: query head `h` attends with KV head `h / (H / Hkv)`.
    Scores are scaled by `scale` (default `1 / sqrt(Dh)`); with `causal`
    position `s` sees positions `<= s` only.

    Example:
    ```mlir
    %a = moe.attention %q, %k, %v
        {num_heads = 4 : i64, num_kv_heads = 2 : i64, causal}
        : tensor<?x?x96xf32>, tensor<?x?x48xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$query, Moe_FloatTensor:$key,
                       Moe_FloatTensor:$value, Moe_I64Attr:$num_heads,
                       Moe_I64Attr:$num_kv_heads, UnitAttr:$causal,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value attr-dict `:` type($query) `,` type($key)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getHeadDim();
  }];
}

class Moe_ElementwiseOp<string mnemonic, list<Trait> traits = []>
    : Moe_Op<mnemonic, !listconcat(traits,
          [Pure, Elementwise, SameOperandsAndResultType,
           DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>])> {
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "operands attr-dict `:` type($result)";
}

def Moe_AddOp : Moe_ElementwiseOp<"add", [Commutative]> {
  let summary = "elementwise sum (the residual connection)";
  let description = [{
    Example: `%r = moe.add %h, %a : tensor<?x?x64xf32>`
  }];
  let arguments = (ins Moe_FloatTensor:$lhs, Moe_FloatTensor:$rhs);
}

def Moe_MulOp : Moe_ElementwiseOp<"mul", [Commutative]> {
  let summary = "elementwise product";
  let description = [{
    Example: `%p = moe.mul %a, %b : tensor<?x?x64xf32>`
  }];
  let arguments = (ins Moe_FloatTensor:$lhs, Moe_FloatTensor:$rhs);
}

def Moe_SiluOp : Moe_ElementwiseOp<"silu"> {
  let summary = "SiLU activation, x * sigmoid(x)";
  let description = [{
    Example: `%s = moe.silu %x : tensor<?x?x176xf32>`
  }];
  let arguments = (ins Moe_FloatTensor:$input);
}

def Moe_SwigluOp : Moe_ElementwiseOp<"swiglu"> {
  let summary = "gated SiLU, silu(gate) * up";
  let description = [{
    The gating of Llama's MLP: `down(swiglu(gate(x), up(x)))`.

    Example: `%s = moe.swiglu %gate, %up : tensor<?x?x176xf32>`
  }];
  let arguments = (ins Moe_FloatTensor:$gate, Moe_FloatTensor:$up);
}

def Moe_AddBiasOp : Moe_Op<"add_bias",
    [Pure, AllTypesMatch<["input", "result"]>, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "adds a bias vector to every row (Qwen2's q/k/v biases)";
  let description = [{
    `result[..., n] = input[..., n] + bias[n]`; the bias has the input's width
    and element type.

    Example:
    `%q2 = moe.add_bias %q, %bq : tensor<?x?x96xf32>, tensor<96xf32>`
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$bias);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $bias attr-dict `:` type($input) `,` type($bias)";
  let hasVerifier = 1;
}

def Moe_ClampOp : Moe_ElementwiseOp<"clamp"> {
  let summary = "clamps to [-limit, limit] (OLMoE's clip_qkv)";
  let description = [{
    `result = min(max(input, -limit), limit)`, limit > 0.

    Example: `%c = moe.clamp %q {limit = 8.0 : f64} : tensor<?x?x64xf32>`
  }];
  let arguments = (ins Moe_FloatTensor:$input, F64Attr:$limit);
  let hasVerifier = 1;
}

def Moe_SigmoidGateOp : Moe_Op<"sigmoid_gate",
    [Pure, AllTypesMatch<["input", "result"]>, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "scales each row by the sigmoid of its gate (Qwen2-MoE's shared expert)";
  let description = [{
    `result[..., n] = input[..., n] * sigmoid(gate[..., 0])`: the gate has
    the input's leading dimensions and width 1.

    Example:
    ```mlir
    %s = moe.sigmoid_gate %shared, %g
        : tensor<?x?x64xf32>, tensor<?x?x1xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$gate);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $gate attr-dict `:` type($input) `,` type($gate)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of Experts
//===----------------------------------------------------------------------===//

def Moe_RouterOp : Moe_Op<"router", [Pure, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "score experts and pick the top-k per token";
  let description = [{
    For every token of `input` [..., D]: `logits = input @ weight^T` with
    `weight` [E, D]; `probs = softmax(logits)`; `indices` are the `top_k`
    experts of highest probability (ties to the lower index) and `weights`
    their probabilities, divided by their sum when `normalize` is set
    (Mixtral) or left as they are (Qwen2-MoE's `norm_topk_prob = false`).
    The logits are a result so that the load-balancing loss can use them.

    Example:
    ```mlir
    %logits, %w, %idx = moe.router %x, %gate {top_k = 2 : i64, normalize}
        : (tensor<?x?x64xf32>, tensor<4x64xf32>)
        -> (tensor<?x?x4xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi32>)
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       Moe_I64Attr:$top_k, UnitAttr:$normalize);
  let results = (outs Moe_FloatTensor:$logits, Moe_FloatTensor:$weights,
                      Moe_IndexTensor:$indices);
  let assemblyFormat =
      "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_DispatchOp : Moe_Op<"dispatch", [Pure, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "group token copies by expert (dropless)";
  let description = [{
    Every token of `input` [..., D] is copied once for each of its K chosen
    experts (`indices` [..., K]). The T = tokens x K copies are laid out
    grouped by expert, in ascending expert order and, within an expert, in
    token order: `grouped` [T, D]. `counts` [E] holds how many rows each expert
    received (a run-time value: nothing is dropped or padded) and
    `source_slots` [T] the slot each grouped row came from
    (`token * K + k`), which `moe.combine` uses to undo the permutation.

    Example:
    ```mlir
    %g, %counts, %slots = moe.dispatch %x, %idx {num_experts = 4 : i64}
        : (tensor<?x?x64xf32>, tensor<?x?x2xi32>)
        -> (tensor<?x64xf32>, tensor<4xi64>, tensor<?xi32>)
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_IndexTensor:$indices,
                       Moe_I64Attr:$num_experts);
  let results = (outs Moe_FloatTensor:$grouped, Moe_IndexTensor:$counts,
                      Moe_IndexTensor:$source_slots);
  let assemblyFormat =
      "$input `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_ExpertMLPOp : Moe_Op<"expert_mlp",
    [Pure, AllTypesMatch<["input", "result"]>, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "SwiGLU MLP of each expert over its group of rows";
  let description = [{
    `input` [T, D] holds rows grouped by expert as `moe.dispatch` lays them
    out, `counts` [E] the size of each group. Rows of group e go through
    expert e: `down[e] @ (silu(gate[e] @ x) * up[e] @ x)`, with `gate` and `up`
    [E, F, D] and `down` [E, D, F] (Mixtral's w1, w3, w2 stacked over experts).

    Example:
    ```mlir
    %y = moe.expert_mlp %g, %counts, %w1, %w3, %w2
        : tensor<?x64xf32>, tensor<4xi64>,
          tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_IndexTensor:$counts,
                       Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_FloatTensor:$down);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $counts `,` $gate `,` $up `,` $down attr-dict `:`
    type($input) `,` type($counts) `,` type($gate) `,` type($up) `,`
    type($down)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getNumExperts() {
      return ::llvm::cast<::mlir::RankedTensorType>(getGate().getType())
          .getDimSize(0);
    }
  }];
}

def Moe_CombineOp : Moe_Op<"combine", [Pure, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "weighted un-permute of expert outputs back to tokens";
  let description = [{
    `result[t] = sum_k weights[t, k] * input[row of slot t * K + k]`, where
    `source_slots` (from `moe.dispatch`) names the slot of each row of `input`
    [T, D]. The result has the token shape of `weights` [..., K] with D
    appended.

    Example:
    ```mlir
    %o = moe.combine %y, %w, %slots
        : (tensor<?x64xf32>, tensor<?x?x2xf32>, tensor<?xi32>)
        -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weights,
                       Moe_IndexTensor:$source_slots);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_FusedExpertsOp : Moe_Op<"fused_experts",
    [Pure, AllTypesMatch<["input", "result"]>,
     DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "a whole MoE block: routing, grouped SwiGLU experts, combine";
  let description = [{
    What `moe.router`, `moe.dispatch`, `moe.expert_mlp` and `moe.combine`
    compute together, as one op that `moe-fuse-experts` makes of them: for
    every token of `input` [..., D], `logits = input @ router^T` [..., E],
    the `top_k` experts of highest softmax probability (ties to the lower
    index) with their probabilities as weights (divided by their sum when
    `normalize` is set), and `result = sum_k weight_k * expert_k(input)`,
    where expert e is `down[e] @ (silu(gate[e] @ x) * up[e] @ x)` (the only
    `activation` so far is "swiglu"). `gate`, `up` are [E, F, D] and `down`
    [E, D, F].

    The op is a backend's unit of planning: how many experts, how many each
    token picks, how they are weighted and activated, and every shape. Its
    kernel routes and packs the routed rows, runs the experts over them and
    writes the weighted rows into the result, with no value of the size
    tokens x top_k in between. The router logits are a result because the
    load-balancing and z losses read them; the backward pass
    (`moe.fused_experts_grad`) recomputes the routing from them and the
    experts' hidden activations from `input`.

    `expert_parallel` (default 1), which `moe-expert-parallel` sets, splits
    the experts over that many ranks: `gate`, `up` and `down` are then one
    rank's E / expert_parallel consecutive experts, while `router` keeps all
    E rows (every rank routes its own tokens to every expert). The kernel
    exchanges the routed rows with the ranks that own their experts after
    routing and exchanges the results back before combining.

    With `labels` (the token labels [...] of a training step, as the losses
    read them), the tokens at the end of each row of the batch whose labels
    are all `ignore_index` (the padding, and the last token, which predicts
    nothing) skip the experts: their result rows are zero. `moe-autodiff`
    passes the labels where every attention is causal, so that no labelled
    position depends on those tokens and the losses and every gradient are
    those of the whole block; the router logits are still computed for
    every token (the router losses leave the unlabelled ones out).

    Example:
    ```mlir
    %y, %logits = moe.fused_experts %x, %router, %w1, %w3, %w2
        {top_k = 2 : i64, normalize, activation = "swiglu"}
        : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>,
           tensor<4x128x64xf32>, tensor<4x64x128xf32>)
        -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$router,
                       Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_FloatTensor:$down,
                       Optional<Moe_IndexTensor>:$labels, Moe_I64Attr:$top_k,
                       UnitAttr:$normalize, StrAttr:$activation,
                       DefaultValuedAttr<Moe_I64Attr, "1">:$expert_parallel,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Moe_FloatTensor:$result, Moe_FloatTensor:$logits);
  let assemblyFormat = [{
    $input `,` $router `,` $gate `,` $up `,` $down (`labels` $labels^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getNumExperts() {
      return ::llvm::cast<::mlir::RankedTensorType>(getRouter().getType())
          .getDimSize(0);
    }
  }];
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

def Moe_CrossEntropyOp : Moe_Op<"cross_entropy", [Pure, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "mean token cross-entropy of logits against labels";
  let description = [{
    `logits` [..., V], `labels` [...]: the mean over positions whose label is
    not `ignore_index` of `logsumexp(logits) - logits[label]`, in fp32. For
    next-token prediction the labels are the inputs shifted by one, with the
    last position ignored.

    Example:
    ```mlir
    %ce = moe.cross_entropy %logits, %labels {ignore_index = -100 : i64}
        : tensor<?x?x256xf32>, tensor<?x?xi32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$logits, Moe_IndexTensor:$labels,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Moe_ScalarLoss:$loss);
  let assemblyFormat = [{
    $logits `,` $labels attr-dict `:` type($logits) `,` type($labels)
  }];
  let hasVerifier = 1;
}

def Moe_LoadBalancingLossOp : Moe_Op<"load_balancing_loss",
    [Pure, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "Switch/Mixtral auxiliary loss over the routers of all layers";
  let description = [{
    The router logits of every MoE layer (each [..., E]) are taken together as
    one set of tokens. With `f_e` the fraction of (token, top-k slot)
    assignments that go to expert e and `P_e` the mean softmax probability of
    e, the loss is `E * sum_e f_e * P_e` (about `top_k` when routing is
    balanced). The caller scales it by `router_aux_loss_coef`.

    Only tokens with a label count: `labels` has one entry per row of each
    layer's logits, and rows whose label is `ignore_index` (the padding of
    short training lines) are left out of f, P and the gradient, as
    transformers leaves padding out through the attention mask.

    Example:
    ```mlir
    %aux = moe.load_balancing_loss %labels, %l0, %l1 {top_k = 2 : i64}
        : tensor<2x8xi32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>
    ```
  }];
  let arguments = (ins Moe_IndexTensor:$labels,
                       Variadic<Moe_FloatTensor>:$router_logits,
                       Moe_I64Attr:$top_k,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Moe_ScalarLoss:$loss);
  let assemblyFormat = [{
    $labels `,` $router_logits attr-dict `:` type($labels) `,`
    type($router_logits)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Initialisation programs
//
// Ops that derive parameters from other tensors (for Drop-Upcycling: the
// experts from a dense FFN). Randomness is counter-based: every op draws from
// the stream named by (`seed`, `stream`), element by element, so results do
// not depend on thread count, on op order, or on which experts a rank holds.
//===----------------------------------------------------------------------===//

def Moe_RandomIndicesOp : Moe_Op<"random_indices", [Pure]> {
  let summary = "a uniformly random subset of [0, range), sorted";
  let description = [{
    Chooses `count` distinct indices of `[0, range)` uniformly at random from
    the stream (`seed`, `stream`) and returns them in ascending order.
    Drop-Upcycling uses it to pick the intermediate neurons of an expert to
    re-initialise.

    Example:
    ```mlir
    %idx = moe.random_indices {count = 64 : i64, range = 128 : i64,
        seed = 1234 : i64, stream = "model.layers.0.block_sparse_moe.experts.3"}
        : tensor<64xi64>
    ```
  }];
  let arguments = (ins Moe_I64Attr:$count, Moe_I64Attr:$range,
                       Moe_I64Attr:$seed, StrAttr:$stream);
  let results = (outs 1DTensorOf<[I64]>:$indices);
  let assemblyFormat = "attr-dict `:` type($indices)";
  let hasVerifier = 1;
}

def Moe_SliceMomentsOp : Moe_Op<"slice_moments", [Pure]> {
  let summary = "one mean and one unbiased std over the chosen rows or columns";
  let description = [{
    The scalar mean and the unbiased standard deviation of all elements of
    `input` [R, C] in the rows (`axis = 0`) or columns (`axis = 1`) named by
    `indices`, computed in fp64. With fewer than two elements chosen the
    std is 0 (and with none the mean too).

    Example:
    ```mlir
    %mean, %std = moe.slice_moments %w, %idx {axis = 0 : i64}
        : tensor<128x64xf32>, tensor<64xi64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, 1DTensorOf<[I64]>:$indices,
                       Moe_I64Attr:$axis);
  let results = (outs Moe_ScalarLoss:$mean, Moe_ScalarLoss:$std);
  let assemblyFormat =
      "$input `,` $indices attr-dict `:` type($input) `,` type($indices)";
  let hasVerifier = 1;
}

def Moe_ResampleSliceOp : Moe_Op<"resample_slice",
    [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "replace the chosen rows or columns with Normal(mean, std) draws";
  let description = [{
    A copy of `input` [R, C] whose rows (`axis = 0`) or columns (`axis = 1`)
    named by `indices` hold fresh samples of Normal(`mean`, `std`) from the
    stream (`seed`, `stream`). Drop-Upcycling's re-initialisation.

    Example:
    ```mlir
    %new = moe.resample_slice %w, %idx, %mean, %std
        {axis = 0 : i64, seed = 1234 : i64, stream = "experts.3.w1"}
        : tensor<128x64xf32>, tensor<64xi64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, 1DTensorOf<[I64]>:$indices,
                       Moe_ScalarLoss:$mean, Moe_ScalarLoss:$std,
                       Moe_I64Attr:$axis, Moe_I64Attr:$seed, StrAttr:$stream);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $indices `,` $mean `,` $std attr-dict `:` type($input) `,`
    type($indices)
  }];
  let hasVerifier = 1;
}

def Moe_AddNoiseSliceOp : Moe_Op<"add_noise_slice",
    [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "add Normal(0, std) noise to the chosen rows or columns";
  let description = [{
    A copy of `input` [R, C] with Normal(0, `std`) noise from the stream
    (`seed`, `stream`) added to the rows (`axis = 0`) or columns
    (`axis = 1`) named by `indices`: the random-noise upcycling baseline.

    Example:
    ```mlir
    %new = moe.add_noise_slice %w, %idx
        {axis = 1 : i64, std = 0.02 : f64, seed = 7 : i64, stream = "e3.w2"}
        : tensor<64x128xf32>, tensor<64xi64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, 1DTensorOf<[I64]>:$indices,
                       Moe_I64Attr:$axis, F64Attr:$std, Moe_I64Attr:$seed,
                       StrAttr:$stream);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $indices attr-dict `:` type($input) `,` type($indices)";
  let hasVerifier = 1;
}

def Moe_RandomTensorOp : Moe_Op<"random_tensor", [Pure]> {
  let summary = "a tensor of random draws";
  let description = [{
    Draws every element from the stream (`seed`, `stream`): `normal` gives
    Normal(0, `std`); `centered_uniform` gives uniform draws shifted by their
    sample mean and scaled to standard deviation `std`,
    `(u - mean(u)) * std * sqrt(12)` with u ~ U[0, 1) (how the published
    Drop-Upcycling runs initialised routers).

    Example:
    ```mlir
    %router = moe.random_tensor {distribution = "centered_uniform",
        std = 0.02 : f64, seed = 1234 : i64, stream = "model.layers.0.gate"}
        : tensor<8x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$distribution, F64Attr:$std,
                       Moe_I64Attr:$seed, StrAttr:$stream);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Moe_SliceOp : Moe_Op<"slice", [Pure]> {
  let summary = "a contiguous block of rows or columns of a matrix";
  let description = [{
    `result = input[offset : offset + n, :]` for `axis = 0`, or
    `input[:, offset : offset + n]` for `axis = 1`, n being the result's size
    along the axis: one fine-grained expert's neurons of a dense FFN matrix.

    Example:
    ```mlir
    %half = moe.slice %gate {axis = 0 : i64, offset = 64 : i64}
        : tensor<128x64xf32> -> tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_I64Attr:$axis,
                       Moe_I64Attr:$offset);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Moe_ScaleOp : Moe_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "multiplies every element by a constant";
  let description = [{
    `result = input * factor`: the down projections of upcycled experts that
    share the dense output (fine-grained experts, a shared expert).

    Example: `%d = moe.scale %down {factor = 4.0 : f64} : tensor<64x32xf32>`
  }];
  let arguments = (ins Moe_FloatTensor:$input, F64Attr:$factor);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Moe_StackOp : Moe_Op<"stack", [Pure]> {
  let summary = "stack equally shaped tensors along a new leading dimension";
  let description = [{
    `result[i] = inputs[i]`: builds a stacked expert parameter [E, ...] from
    the E experts' matrices. With `expert_parallel` (set by
    `moe-expert-parallel` where the experts are split over ranks), the result
    is one rank's share, E / expert_parallel consecutive inputs chosen by the
    rank at run time; the runtime skips the work that feeds only the other
    ranks' inputs, so each rank derives only its own experts.

    Example:
    ```mlir
    %w1 = moe.stack %e0, %e1 : tensor<128x64xf32> -> tensor<2x128x64xf32>
    ```
  }];
  let arguments = (ins Variadic<Moe_FloatTensor>:$inputs,
                       DefaultValuedAttr<Moe_I64Attr, "1">:$expert_parallel);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs) `->` type($result)";
  let hasVerifier = 1;
}

def Moe_WriteParamOp : Moe_Op<"write_param",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "set a parameter's value";
  let description = [{
    Stores `value` as the value of the `moe.param` named by `name`; the types
    must match. Initialisation programs end by writing every parameter they
    derive.

    Example:
    ```mlir
    moe.write_param @"model.layers.0.block_sparse_moe.gate.weight" = %router
        : tensor<8x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name, Moe_FloatTensor:$value);
  let assemblyFormat = "$name `=` $value attr-dict `:` type($value)";
}

include "MoeGradOps.td"
include "MoeGenerateOps.td"

#endif // MOE_OPS_TD
