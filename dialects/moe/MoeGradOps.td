//===- MoeGradOps.td - training-step operations ------------*- tablegen -*-===//
//
// The ops `moe-autodiff` builds: the vector-Jacobian products of the
// forward ops (one `*_grad` op per forward op whose gradient is not itself
// expressed by forward ops), the router z-loss, and constants. Gradients
// have the types of the values they are gradients of.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_GRAD_OPS_TD
#define MOE_GRAD_OPS_TD

def Moe_FillOp : Moe_Op<"fill", [Pure]> {
  let summary = "a tensor holding one value everywhere";
  let description = [{
    Seeds reverse-mode differentiation: the gradient of a loss with respect
    to itself, times the loss's coefficient in the total.

    Example:
    ```mlir
    %seed = moe.fill {value = 2.0e-02 : f64} : tensor<f32>
    ```
  }];
  let arguments = (ins F64Attr:$value);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
}

def Moe_EmbeddingGradOp : Moe_Op<"embedding_grad", [Pure]> {
  let summary = "gradient of an embedding table: scatter-add by token id";
  let description = [{
    `table_grad[v] = sum of result_grad[b, s] over positions with
    ids[b, s] = v`; rows of unused ids are zero.

    Example:
    ```mlir
    %dtable = moe.embedding_grad %dh[%ids]
        : (tensor<2x8x64xf32>, tensor<2x8xi32>) -> tensor<256x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$result_grad, Moe_IndexTensor:$ids);
  let results = (outs Moe_FloatTensor:$table_grad);
  let assemblyFormat =
      "$result_grad `[` $ids `]` attr-dict `:` functional-type(operands, results)";
}

def Moe_RMSNormGradOp : Moe_Op<"rms_norm_grad",
    [Pure, AllTypesMatch<["input", "result_grad", "input_grad"]>,
     AllTypesMatch<["weight", "weight_grad"]>]> {
  let summary = "gradients of rms_norm's input and weight";
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       Moe_FloatTensor:$result_grad, F64Attr:$epsilon);
  let results = (outs Moe_FloatTensor:$input_grad,
                      Moe_FloatTensor:$weight_grad);
  let assemblyFormat = [{
    $input `,` $weight `,` $result_grad attr-dict `:` type($input) `,`
    type($weight)
  }];
}

def Moe_LinearGradInputOp : Moe_Op<"linear_grad_input", [Pure]> {
  let summary = "gradient of linear's input: result_grad times weight";
  let description = [{
    `input_grad[..., i] = sum_o result_grad[..., o] * weight[o, i]`.
  }];
  let arguments = (ins Moe_FloatTensor:$result_grad, Moe_FloatTensor:$weight);
  let results = (outs Moe_FloatTensor:$input_grad);
  let assemblyFormat =
      "$result_grad `,` $weight attr-dict `:` functional-type(operands, results)";
}

def Moe_LinearGradWeightOp : Moe_Op<"linear_grad_weight", [Pure]> {
  let summary = "gradient of linear's weight: result_grad^T times input";
  let description = [{
    `weight_grad[o, i] = sum over rows r of result_grad[r, o] * input[r, i]`,
    the leading dimensions flattened into rows.
  }];
  let arguments = (ins Moe_FloatTensor:$result_grad, Moe_FloatTensor:$input);
  let results = (outs Moe_FloatTensor:$weight_grad);
  let assemblyFormat =
      "$result_grad `,` $input attr-dict `:` functional-type(operands, results)";
}

def Moe_AttentionGradOp : Moe_Op<"attention_grad",
    [Pure, AllTypesMatch<["query", "result_grad", "query_grad"]>,
     AllTypesMatch<["key", "value", "key_grad", "value_grad"]>]> {
  let summary = "gradients of attention's query, key and value";
  let description = [{
    Recomputes the attention probabilities from `query` and `key` instead of
    keeping them from the forward pass (the S x S matrices would dominate
    activation memory). Key and value gradients sum over the query heads of
    each KV group.
  }];
  let arguments = (ins Moe_FloatTensor:$query, Moe_FloatTensor:$key,
                       Moe_FloatTensor:$value, Moe_FloatTensor:$result_grad,
                       Moe_I64Attr:$num_heads, Moe_I64Attr:$num_kv_heads,
                       UnitAttr:$causal, F64Attr:$scale);
  let results = (outs Moe_FloatTensor:$query_grad, Moe_FloatTensor:$key_grad,
                      Moe_FloatTensor:$value_grad);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $result_grad attr-dict `:` type($query)
    `,` type($key)
  }];
}

def Moe_SiluGradOp : Moe_Op<"silu_grad",
    [Pure, Elementwise, SameOperandsAndResultType]> {
  let summary = "gradient of silu's input";
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$result_grad);
  let results = (outs Moe_FloatTensor:$input_grad);
  let assemblyFormat = "operands attr-dict `:` type($input_grad)";
}

def Moe_SwigluGradOp : Moe_Op<"swiglu_grad",
    [Pure, AllTypesMatch<["gate", "up", "result_grad", "gate_grad", "up_grad"]>]> {
  let summary = "gradients of swiglu's gate and up inputs";
  let arguments = (ins Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_FloatTensor:$result_grad);
  let results = (outs Moe_FloatTensor:$gate_grad, Moe_FloatTensor:$up_grad);
  let assemblyFormat = "operands attr-dict `:` type($gate)";
}

def Moe_BiasGradOp : Moe_Op<"bias_grad", [Pure]> {
  let summary = "gradient of add_bias's bias: the result gradient summed over rows";
  let arguments = (ins Moe_FloatTensor:$result_grad);
  let results = (outs Moe_FloatTensor:$bias_grad);
  let assemblyFormat =
      "$result_grad attr-dict `:` type($result_grad) `->` type($bias_grad)";
  let hasVerifier = 1;
}

def Moe_ClampGradOp : Moe_Op<"clamp_grad",
    [Pure, Elementwise, SameOperandsAndResultType]> {
  let summary = "gradient of clamp's input: passed where |input| <= limit";
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$result_grad,
                       F64Attr:$limit);
  let results = (outs Moe_FloatTensor:$input_grad);
  let assemblyFormat = "$input `,` $result_grad attr-dict `:` type($input_grad)";
}

def Moe_SigmoidGateGradOp : Moe_Op<"sigmoid_gate_grad",
    [Pure, AllTypesMatch<["input", "result_grad", "input_grad"]>,
     AllTypesMatch<["gate", "gate_grad"]>]> {
  let summary = "gradients of sigmoid_gate's input and gate";
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$gate,
                       Moe_FloatTensor:$result_grad);
  let results = (outs Moe_FloatTensor:$input_grad, Moe_FloatTensor:$gate_grad);
  let assemblyFormat = [{
    $input `,` $gate `,` $result_grad attr-dict `:` type($input) `,`
    type($gate)
  }];
}

def Moe_RouterGradOp : Moe_Op<"router_grad", [Pure]> {
  let summary = "gradient of the router logits";
  let description = [{
    Back through the renormalised top-k softmax weights (the selection in
    `indices` held fixed, as the forward pass made it), plus `logits_grad`,
    a gradient reaching the logits directly (the load-balancing and z
    losses) when given. The router's linear layer is differentiated by
    `moe.linear_grad_*` on the result.
  }];
  let arguments = (ins Moe_FloatTensor:$logits, Moe_IndexTensor:$indices,
                       Moe_FloatTensor:$weights_grad,
                       Optional<Moe_FloatTensor>:$logits_grad,
                       Moe_I64Attr:$top_k, UnitAttr:$normalize);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $indices `,` $weights_grad (`,` $logits_grad^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Moe_DispatchGradOp : Moe_Op<"dispatch_grad", [Pure]> {
  let summary = "gradient of dispatch's input: sum each token's copies";
  let arguments = (ins Moe_FloatTensor:$grouped_grad,
                       Moe_IndexTensor:$source_slots, Moe_I64Attr:$top_k);
  let results = (outs Moe_FloatTensor:$input_grad);
  let assemblyFormat = [{
    $grouped_grad `,` $source_slots attr-dict `:`
    functional-type(operands, results)
  }];
}

def Moe_ExpertMLPTrainOp : Moe_Op<"expert_mlp_train",
    [Pure, AllTypesMatch<["input", "result"]>,
     AllTypesMatch<["gate_hidden", "up_hidden"]>,
     DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "expert_mlp that also returns its hidden pre-activations";
  let description = [{
    `moe.expert_mlp`, returning as well `gate_hidden = x gate[e]^T` and
    `up_hidden = x up[e]^T` [T, F] of every row, which its backward pass
    then reads instead of recomputing them. `moe-autodiff` uses it unless
    asked to recompute.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_IndexTensor:$counts,
                       Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_FloatTensor:$down);
  let results = (outs Moe_FloatTensor:$result, Moe_FloatTensor:$gate_hidden,
                      Moe_FloatTensor:$up_hidden);
  let assemblyFormat = [{
    $input `,` $counts `,` $gate `,` $up `,` $down attr-dict `:`
    type($input) `,` type($counts) `,` type($gate) `,` type($up) `,`
    type($down) `->` type($gate_hidden)
  }];
}

def Moe_ExpertMLPGradOp : Moe_Op<"expert_mlp_grad",
    [Pure, AllTypesMatch<["input", "result_grad", "input_grad"]>,
     AllTypesMatch<["gate", "gate_grad"]>, AllTypesMatch<["up", "up_grad"]>,
     AllTypesMatch<["down", "down_grad"]>]> {
  let summary = "gradients of the expert MLPs' input and weights";
  let description = [{
    Reads each expert's hidden pre-activations from `saved` (gate, then up,
    as `moe.expert_mlp_train` returns them) or, without them, recomputes
    them from `input`.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_IndexTensor:$counts,
                       Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_FloatTensor:$down, Moe_FloatTensor:$result_grad,
                       Variadic<Moe_FloatTensor>:$saved);
  let results = (outs Moe_FloatTensor:$input_grad, Moe_FloatTensor:$gate_grad,
                      Moe_FloatTensor:$up_grad, Moe_FloatTensor:$down_grad);
  let assemblyFormat = [{
    $input `,` $counts `,` $gate `,` $up `,` $down `,` $result_grad
    (`saved` `(` $saved^ `:` type($saved) `)`)? attr-dict `:` type($input) `,`
    type($counts) `,` type($gate) `,` type($up) `,` type($down)
  }];
  let hasVerifier = 1;
}

def Moe_FusedExpertsTrainOp : Moe_Op<"fused_experts_train",
    [Pure, AllTypesMatch<["input", "result"]>,
     AllTypesMatch<["gate_hidden", "up_hidden"]>,
     DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "fused_experts that also keeps its experts' hidden states";
  let description = [{
    `moe.fused_experts`, returning as well each routed row's hidden
    pre-activations `gate_hidden = x gate[e]^T` and `up_hidden = x up[e]^T`
    [tokens * top_k, F], by grouped row (the rows in ascending expert, then
    slot order; rows past those routed, when `labels` skip tokens, are
    unused). Its backward reads them instead of running two of its GEMMs
    again: `moe-autodiff` uses it with `keep-expert-hidden`, trading
    2 x tokens x top_k x F floats per block for a quarter of the experts'
    backward products. Not split over ranks.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$router,
                       Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_FloatTensor:$down,
                       Optional<Moe_IndexTensor>:$labels, Moe_I64Attr:$top_k,
                       UnitAttr:$normalize, StrAttr:$activation,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Moe_FloatTensor:$result, Moe_FloatTensor:$logits,
                      Moe_FloatTensor:$gate_hidden,
                      Moe_FloatTensor:$up_hidden);
  let assemblyFormat = [{
    $input `,` $router `,` $gate `,` $up `,` $down (`labels` $labels^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_FusedExpertsGradOp : Moe_Op<"fused_experts_grad",
    [Pure, AttrSizedOperandSegments,
     AllTypesMatch<["input", "result_grad", "input_grad"]>,
     AllTypesMatch<["router", "router_grad"]>,
     AllTypesMatch<["gate", "gate_grad"]>, AllTypesMatch<["up", "up_grad"]>,
     AllTypesMatch<["down", "down_grad"]>]> {
  let summary = "gradients of a fused MoE block's input and weights";
  let description = [{
    The backward of `moe.fused_experts`, from the block's own operands and
    its router `logits` only: the top-k selection and weights are
    recomputed from the logits (exactly as the forward pass chose them) and
    the experts' hidden activations from `input` (unless `saved` holds
    them), so by default nothing of the size tokens x top_k x expert width
    is kept between the passes. `logits_grad`,
    when given, is a gradient reaching the logits directly (the
    load-balancing and z losses). The attributes and `labels` are those of
    the forward op (the tokens it skipped skip the experts here too; their
    result gradient must be zero, as it is under causal attention); split
    over ranks, the expert weights' gradients are those of this rank's
    experts, from the rows every rank of its group routed to them. `saved`,
    when given, holds the hidden pre-activations `moe.fused_experts_train`
    kept (gate, then up), read instead of recomputed.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$router,
                       Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_FloatTensor:$down, Moe_FloatTensor:$logits,
                       Moe_FloatTensor:$result_grad,
                       Optional<Moe_FloatTensor>:$logits_grad,
                       Optional<Moe_IndexTensor>:$labels,
                       Variadic<Moe_FloatTensor>:$saved,
                       Moe_I64Attr:$top_k, UnitAttr:$normalize,
                       StrAttr:$activation,
                       DefaultValuedAttr<Moe_I64Attr, "1">:$expert_parallel,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Moe_FloatTensor:$input_grad,
                      Moe_FloatTensor:$router_grad,
                      Moe_FloatTensor:$gate_grad, Moe_FloatTensor:$up_grad,
                      Moe_FloatTensor:$down_grad);
  let assemblyFormat = [{
    $input `,` $router `,` $gate `,` $up `,` $down `,` $logits `,`
    $result_grad (`,` $logits_grad^)? (`labels` $labels^)?
    (`saved` `(` $saved^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_CombineGradOp : Moe_Op<"combine_grad",
    [Pure, AllTypesMatch<["input", "input_grad"]>,
     AllTypesMatch<["weights", "weights_grad"]>]> {
  let summary = "gradients of combine's expert outputs and routing weights";
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weights,
                       Moe_IndexTensor:$source_slots,
                       Moe_FloatTensor:$result_grad);
  let results = (outs Moe_FloatTensor:$input_grad,
                      Moe_FloatTensor:$weights_grad);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

def Moe_CrossEntropyGradOp : Moe_Op<"cross_entropy_grad",
    [Pure, AllTypesMatch<["logits", "logits_grad"]>]> {
  let summary = "gradient of the mean cross-entropy's logits";
  let arguments = (ins Moe_FloatTensor:$logits, Moe_IndexTensor:$labels,
                       Moe_ScalarLoss:$loss_grad,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Moe_FloatTensor:$logits_grad);
  let assemblyFormat = [{
    $logits `,` $labels `,` $loss_grad attr-dict `:` type($logits) `,`
    type($labels)
  }];
}

def Moe_LoadBalancingLossGradOp : Moe_Op<"load_balancing_loss_grad", [Pure]> {
  let summary = "gradients of the load-balancing loss's router logits";
  let description = [{
    The assignment fractions (counts of top-k choices) are constants; the
    gradient flows through the mean router probabilities.
  }];
  let arguments = (ins Moe_IndexTensor:$labels,
                       Variadic<Moe_FloatTensor>:$router_logits,
                       Moe_ScalarLoss:$loss_grad, Moe_I64Attr:$top_k,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Variadic<Moe_FloatTensor>:$logits_grads);
  let assemblyFormat = [{
    $labels `,` $router_logits `,` $loss_grad attr-dict `:` type($labels) `,`
    type($router_logits) `->` type($logits_grads)
  }];
  let hasVerifier = 1;
}

def Moe_RouterZLossOp : Moe_Op<"router_z_loss",
    [Pure, DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>]> {
  let summary = "router z-loss: mean squared logsumexp of the router logits";
  let description = [{
    `mean over the tokens of all layers of logsumexp(logits)^2` (ST-MoE),
    which keeps router logits small. Tokens whose label is `ignore_index`
    are left out, as in `moe.load_balancing_loss`.

    Example:
    ```mlir
    %z = moe.router_z_loss %labels, %l0, %l1
        : tensor<2x8xi32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>
    ```
  }];
  let arguments = (ins Moe_IndexTensor:$labels,
                       Variadic<Moe_FloatTensor>:$router_logits,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Moe_ScalarLoss:$loss);
  let assemblyFormat = [{
    $labels `,` $router_logits attr-dict `:` type($labels) `,`
    type($router_logits)
  }];
  let hasVerifier = 1;
}

def Moe_RouterZLossGradOp : Moe_Op<"router_z_loss_grad", [Pure]> {
  let summary = "gradients of the router z-loss's logits";
  let arguments = (ins Moe_IndexTensor:$labels,
                       Variadic<Moe_FloatTensor>:$router_logits,
                       Moe_ScalarLoss:$loss_grad,
                       DefaultValuedAttr<Moe_I64Attr, "-100">:$ignore_index);
  let results = (outs Variadic<Moe_FloatTensor>:$logits_grads);
  let assemblyFormat = [{
    $labels `,` $router_logits `,` $loss_grad attr-dict `:` type($labels) `,`
    type($router_logits) `->` type($logits_grads)
  }];
  let hasVerifier = 1;
}

#endif // MOE_GRAD_OPS_TD
