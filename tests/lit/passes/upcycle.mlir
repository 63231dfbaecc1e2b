// moe-upcycle on a two-layer dense model (FFNs only): the rewrite of
// @forward and the initialisation program of every method.
// RUN: moe-opt %s --moe-upcycle="experts=2 top-k=1 ratio=0.5 seed=7" | FileCheck %s --check-prefixes=COMMON,DROP
// RUN: moe-opt %s --moe-upcycle="experts=2 top-k=1 method=naive" | FileCheck %s --check-prefixes=COMMON,NAIVE
// RUN: moe-opt %s --moe-upcycle="experts=2 top-k=1 ratio=0" | FileCheck %s --check-prefixes=COMMON,NAIVE
// RUN: moe-opt %s --moe-upcycle="experts=2 top-k=1 method=noise ratio=0.34" | FileCheck %s --check-prefixes=COMMON,NOISE
// RUN: moe-opt %s --moe-upcycle="experts=2 top-k=1 index-sets=shared router-init=normal" | FileCheck %s --check-prefixes=COMMON,SHARED
// RUN: moe-opt %s --moe-upcycle="experts=2 top-k=1 method=scratch" | FileCheck %s --check-prefixes=COMMON,SCRATCH
// RUN: not moe-opt %s --moe-upcycle="experts=2 top-k=1 layers=0" 2>&1 | FileCheck %s --check-prefix=MIXTRAL-DENSE
// A Qwen3 source becomes Qwen3-MoE, which can keep dense layers.
// RUN: sed 's/LlamaForCausalLM/Qwen3ForCausalLM/' %s | moe-opt --moe-upcycle="experts=2 top-k=1 layers=every-other" | FileCheck %s --check-prefix=ODD
// RUN: sed 's/LlamaForCausalLM/Qwen3ForCausalLM/' %s | moe-opt --moe-upcycle="experts=2 top-k=1 layers=0" | FileCheck %s --check-prefix=LIST
// Fine-grained experts: 2 experts x granularity 3 of 2 neurons, top-3.
// RUN: moe-opt %s --moe-upcycle="experts=2 top-k=1 granularity=3 method=naive" | FileCheck %s --check-prefix=GRAIN
// A Qwen2 source becomes Qwen2-MoE with the dense FFN as shared expert.
// RUN: sed 's/LlamaForCausalLM/Qwen2ForCausalLM/' %s | moe-opt --moe-upcycle="experts=2 top-k=1 shared-expert=true method=naive" | FileCheck %s --check-prefix=SHEXP

// COMMON: moe.hf_config = {architecture = "MixtralForCausalLM", hidden_size = 8 : i64, intermediate_size = 6 : i64, model_type = "mixtral", num_experts_per_tok = 1 : i64, num_local_experts = 2 : i64, router_aux_loss_coef = 2.000000e-02 : f64}
// DROP-SAME: moe.upcycling = {index_sets = "per-matrix", layers = "all", method = "drop", ratio = 5.000000e-01 : f64, router_init = "uniform", seed = 7 : i64}
// SCRATCH-SAME: moe.upcycling = {{{.*}}method = "scratch"
// COMMON-NOT: mlp.gate_proj
// COMMON: moe.param @model.layers.0.block_sparse_moe.gate.weight : tensor<2x8xf32>
// COMMON: moe.param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" : tensor<2x6x8xf32>
// COMMON: moe.param @"model.layers.0.block_sparse_moe.experts.*.w3.weight" : tensor<2x6x8xf32>
// COMMON: moe.param @"model.layers.0.block_sparse_moe.experts.*.w2.weight" : tensor<2x8x6xf32>
// COMMON: moe.param @model.layers.1.block_sparse_moe.gate.weight
// COMMON: moe.param @model.norm.weight

// COMMON-LABEL: func.func @forward
// COMMON: %[[L:.*]], %[[W:.*]], %[[I:.*]] = moe.router %{{.*}}, %{{.*}} {normalize, top_k = 1 : i64}
// COMMON: %[[G:.*]], %[[C:.*]], %[[S:.*]] = moe.dispatch %{{.*}}, %[[I]] {num_experts = 2 : i64}
// COMMON: %[[Y:.*]] = moe.expert_mlp %[[G]], %[[C]]
// COMMON: %[[O:.*]] = moe.combine %[[Y]], %[[W]], %[[S]]
// COMMON: moe.add %{{.*}}, %[[O]]
// COMMON-NOT: moe.swiglu

// DROP-LABEL: func.func @initialize
// DROP-SAME: (%[[GATE:.*]]: tensor<6x8xf32> {moe.source = "model.layers.0.mlp.gate_proj.weight"}, %[[UP:.*]]: tensor<6x8xf32> {moe.source = "model.layers.0.mlp.up_proj.weight"}, %[[DOWN:.*]]: tensor<8x6xf32> {moe.source = "model.layers.0.mlp.down_proj.weight"}
// floor(0.5 * 6) = 3 rows of gate, per expert and matrix, with their own streams.
// DROP: %[[I0:.*]] = moe.random_indices {count = 3 : i64, range = 6 : i64, seed = 7 : i64, stream = "model.layers.0.block_sparse_moe.experts.0.w1.weight.indices"}
// DROP: %[[M0:.*]], %[[S0:.*]] = moe.slice_moments %[[GATE]], %[[I0]] {axis = 0 : i64}
// DROP: %[[E0:.*]] = moe.resample_slice %[[GATE]], %[[I0]], %[[M0]], %[[S0]] {axis = 0 : i64, seed = 7 : i64, stream = "model.layers.0.block_sparse_moe.experts.0.w1.weight.values"}
// DROP: stream = "model.layers.0.block_sparse_moe.experts.1.w1.weight.indices"
// DROP: %[[E1:.*]] = moe.resample_slice %[[GATE]]
// DROP: %[[W1:.*]] = moe.stack %[[E0]], %[[E1]] : tensor<6x8xf32>, tensor<6x8xf32> -> tensor<2x6x8xf32>
// DROP: moe.write_param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" = %[[W1]]
// DROP: moe.slice_moments %[[UP]]
// DROP: moe.write_param @"model.layers.0.block_sparse_moe.experts.*.w3.weight"
// down_proj: columns are the neurons.
// DROP: moe.slice_moments %[[DOWN]], %{{.*}} {axis = 1 : i64}
// DROP: moe.write_param @"model.layers.0.block_sparse_moe.experts.*.w2.weight"
// DROP: %[[R:.*]] = moe.random_tensor {distribution = "centered_uniform", seed = 7 : i64, std = 2.000000e-02 : f64, stream = "model.layers.0.block_sparse_moe.gate.weight"} : tensor<2x8xf32>
// DROP: moe.write_param @model.layers.0.block_sparse_moe.gate.weight = %[[R]]
// DROP: moe.write_param @"model.layers.1.block_sparse_moe.experts.*.w2.weight"

// Naive (and r = 0): every expert is the dense matrix itself.
// NAIVE-LABEL: func.func @initialize
// NAIVE-SAME: (%[[GATE:[^:]*]]: tensor<6x8xf32>
// NAIVE-NOT: moe.random_indices
// NAIVE: %[[W1:.*]] = moe.stack %[[GATE]], %[[GATE]] : tensor<6x8xf32>, tensor<6x8xf32> -> tensor<2x6x8xf32>
// NAIVE: moe.write_param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" = %[[W1]]
// NAIVE: moe.random_tensor {distribution = "centered_uniform"

// floor(0.34 * 6) = 2 rows, noise instead of resampling.
// NOISE-LABEL: func.func @initialize
// NOISE: %[[I:.*]] = moe.random_indices {count = 2 : i64, range = 6 : i64
// NOISE: moe.add_noise_slice %{{.*}}, %[[I]] {axis = 0 : i64, seed = 1234 : i64, std = 2.000000e-02 : f64, stream = "model.layers.0.block_sparse_moe.experts.0.w1.weight.noise"}
// NOISE-NOT: moe.resample_slice

// Shared index sets: one stream per expert serves gate, up and down.
// SHARED-LABEL: func.func @initialize
// SHARED: stream = "model.layers.0.block_sparse_moe.experts.0.indices"
// SHARED: stream = "model.layers.0.block_sparse_moe.experts.1.indices"
// SHARED: stream = "model.layers.0.block_sparse_moe.experts.0.indices"
// SHARED-NOT: w1.weight.indices
// SHARED: moe.random_tensor {distribution = "normal"

// SCRATCH-NOT: func.func @initialize

// Every other layer (1, 3, ...): layer 0 keeps its dense FFN.
// MIXTRAL-DENSE: error: moe-upcycle: MixtralForCausalLM cannot keep dense layers (transformers ignores mlp_only_layers there)
// ODD: moe.hf_config = {architecture = "Qwen3MoeForCausalLM", decoder_sparse_step = 1 : i64, hidden_size = 8 : i64, mlp_only_layers = [0], model_type = "qwen3_moe", moe_intermediate_size = 6 : i64, norm_topk_prob = true, num_experts = 2 : i64
// ODD: moe.param @model.layers.0.mlp.gate_proj.weight
// ODD: moe.param @model.layers.1.mlp.gate.weight
// ODD: moe.param @"model.layers.1.mlp.experts.*.gate_proj.weight"
// ODD: moe.param @"model.layers.1.mlp.experts.*.down_proj.weight"
// ODD: func.func @initialize(%{{.*}}: tensor<6x8xf32> {moe.source = "model.layers.1.mlp.gate_proj.weight"}
// ODD: moe.write_param @"model.layers.1.mlp.experts.*.up_proj.weight"
// LIST: mlp_only_layers = [1]
// LIST: moe.param @model.layers.0.mlp.gate.weight
// LIST: moe.param @model.layers.1.mlp.gate_proj.weight

// GRAIN: intermediate_size = 2 : i64{{.*}}num_experts_per_tok = 3 : i64, num_local_experts = 6 : i64
// GRAIN: moe.param @model.layers.0.block_sparse_moe.gate.weight : tensor<6x8xf32>
// GRAIN: moe.param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" : tensor<6x2x8xf32>
// GRAIN: moe.param @"model.layers.0.block_sparse_moe.experts.*.w2.weight" : tensor<6x8x2xf32>
// GRAIN: moe.router {{.*}} {normalize, top_k = 3 : i64}
// GRAIN-LABEL: func.func @initialize
// GRAIN: moe.slice %arg0 {axis = 0 : i64, offset = 0 : i64} : tensor<6x8xf32> -> tensor<2x8xf32>
// GRAIN: moe.slice %arg0 {axis = 0 : i64, offset = 2 : i64}
// GRAIN: moe.slice %arg0 {axis = 0 : i64, offset = 4 : i64}
// GRAIN: %[[D:.*]] = moe.slice %arg2 {axis = 1 : i64, offset = 0 : i64} : tensor<8x6xf32> -> tensor<8x2xf32>
// GRAIN: moe.scale %[[D]] {factor = 3.000000e+00 : f64} : tensor<8x2xf32>
// GRAIN: %[[R0:.*]] = moe.random_tensor {{.*}}stream = "model.layers.0.block_sparse_moe.gate.weight.row0"{{.*}} : tensor<8xf32>
// GRAIN: %[[R1:.*]] = moe.random_tensor {{.*}}stream = "model.layers.0.block_sparse_moe.gate.weight.row1"
// GRAIN: moe.stack %[[R0]], %[[R0]], %[[R0]], %[[R1]], %[[R1]], %[[R1]] : {{.*}} -> tensor<6x8xf32>

// SHEXP: architecture = "Qwen2MoeForCausalLM"{{.*}}shared_expert_intermediate_size = 6 : i64
// SHEXP-NOT: moe.param @model.layers.0.mlp.gate_proj.weight
// SHEXP: moe.param @model.layers.0.mlp.shared_expert.gate_proj.weight : tensor<6x8xf32>
// SHEXP: moe.param @model.layers.0.mlp.shared_expert_gate.weight : tensor<1x8xf32>
// SHEXP-LABEL: func.func @forward
// SHEXP: %[[R:.*]] = moe.combine
// SHEXP: %[[DOWN:.*]] = moe.linear {{.*}} -> tensor<?x?x8xf32>
// SHEXP: %[[GATE:.*]] = moe.linear {{.*}} -> tensor<?x?x1xf32>
// SHEXP: %[[SG:.*]] = moe.sigmoid_gate %[[DOWN]], %[[GATE]]
// SHEXP: moe.add %[[R]], %[[SG]]
// SHEXP-LABEL: func.func @initialize
// SHEXP: moe.scale %arg2 {factor = 5.000000e-01 : f64}
// SHEXP: moe.write_param @model.layers.0.mlp.shared_expert.down_proj.weight = %arg2
// SHEXP: %[[Z:.*]] = moe.fill {value = 0.000000e+00 : f64} : tensor<1x8xf32>
// SHEXP: moe.write_param @model.layers.0.mlp.shared_expert_gate.weight = %[[Z]]

module attributes {moe.hf_config = {architecture = "LlamaForCausalLM", hidden_size = 8 : i64}} {
  moe.param @model.layers.0.mlp.gate_proj.weight : tensor<6x8xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @model.layers.0.mlp.up_proj.weight : tensor<6x8xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @model.layers.0.mlp.down_proj.weight : tensor<8x6xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @model.layers.1.mlp.gate_proj.weight : tensor<6x8xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @model.layers.1.mlp.up_proj.weight : tensor<6x8xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @model.layers.1.mlp.down_proj.weight : tensor<8x6xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @model.norm.weight : tensor<8xf32> init #moe.constant<1.0>
  func.func @forward(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
    %g0 = moe.read_param @model.layers.0.mlp.gate_proj.weight : tensor<6x8xf32>
    %u0 = moe.read_param @model.layers.0.mlp.up_proj.weight : tensor<6x8xf32>
    %d0 = moe.read_param @model.layers.0.mlp.down_proj.weight : tensor<8x6xf32>
    %a0 = moe.linear %x, %g0 : (tensor<?x?x8xf32>, tensor<6x8xf32>) -> tensor<?x?x6xf32>
    %b0 = moe.linear %x, %u0 : (tensor<?x?x8xf32>, tensor<6x8xf32>) -> tensor<?x?x6xf32>
    %s0 = moe.swiglu %a0, %b0 : tensor<?x?x6xf32>
    %o0 = moe.linear %s0, %d0 : (tensor<?x?x6xf32>, tensor<8x6xf32>) -> tensor<?x?x8xf32>
    %h0 = moe.add %x, %o0 : tensor<?x?x8xf32>
    %g1 = moe.read_param @model.layers.1.mlp.gate_proj.weight : tensor<6x8xf32>
    %u1 = moe.read_param @model.layers.1.mlp.up_proj.weight : tensor<6x8xf32>
    %d1 = moe.read_param @model.layers.1.mlp.down_proj.weight : tensor<8x6xf32>
    %a1 = moe.linear %h0, %g1 : (tensor<?x?x8xf32>, tensor<6x8xf32>) -> tensor<?x?x6xf32>
    %b1 = moe.linear %h0, %u1 : (tensor<?x?x8xf32>, tensor<6x8xf32>) -> tensor<?x?x6xf32>
    %s1 = moe.swiglu %a1, %b1 : tensor<?x?x6xf32>
    %o1 = moe.linear %s1, %d1 : (tensor<?x?x6xf32>, tensor<8x6xf32>) -> tensor<?x?x8xf32>
    %h1 = moe.add %h0, %o1 : tensor<?x?x8xf32>
    %n = moe.read_param @model.norm.weight : tensor<8xf32>
    %y = moe.rms_norm %h1, %n {epsilon = 1.0e-05 : f64} : tensor<?x?x8xf32>, tensor<8xf32>
    return %y : tensor<?x?x8xf32>
  }
}
