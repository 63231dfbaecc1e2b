// Every verifier rule of the moe dialect, one broken at a time.
// RUN: moe-opt %s --split-input-file --verify-diagnostics

// expected-error @+1 {{parameter type must have a static shape}}
moe.param @p : tensor<?x4xf32> init #moe.constant<0.0>

// -----

// expected-error @+1 {{type attribute of ranked tensor of 32-bit float or bfloat16 type or 16-bit float values}}
moe.param @p : tensor<4xi32> init #moe.constant<0.0>

// -----

// expected-error @+1 {{normal initialiser std must be finite and >= 0, got -1}}
moe.param @p : tensor<4xf32> init #moe.normal<mean = 0.0, std = -1.0>

// -----

func.func @f() {
  // expected-error @+1 {{expects parent op 'builtin.module'}}
  "moe.param"() <{sym_name = "p", type = tensor<4xf32>, init = #moe.constant<0.0>}> : () -> ()
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{@missing does not name a moe.param}}
  %0 = moe.read_param @missing : tensor<4xf32>
  return
}

// -----

moe.param @p : tensor<4xf32> init #moe.constant<0.0>
func.func @f() {
  // expected-error @+1 {{result type 'tensor<8xf32>' does not match the declared type 'tensor<4xf32>' of @p}}
  %0 = moe.read_param @p : tensor<8xf32>
  return
}

// -----

func.func @f(%t: tensor<256xf32>, %i: tensor<?x?xi32>) {
  // expected-error @+1 {{table must have rank 2}}
  %0 = moe.embedding %t[%i] : (tensor<256xf32>, tensor<?x?xi32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%t: tensor<256x64xf32>, %i: tensor<i32>) {
  // expected-error @+1 {{ids must have rank >= 1}}
  %0 = moe.embedding %t[%i] : (tensor<256x64xf32>, tensor<i32>) -> tensor<64xf32>
  return
}

// -----

func.func @f(%t: tensor<256x64xf32>, %i: tensor<?x?xi32>) {
  // expected-error @+1 {{result element type 'bf16' must match table element type 'f32'}}
  %0 = moe.embedding %t[%i] : (tensor<256x64xf32>, tensor<?x?xi32>) -> tensor<?x?x64xbf16>
  return
}

// -----

func.func @f(%t: tensor<256x64xf32>, %i: tensor<2x3xi32>) {
  // expected-error @+1 {{result shape [2, 4, 64] must equal the ids shape plus the table width [2, 3, 64]}}
  %0 = moe.embedding %t[%i] : (tensor<256x64xf32>, tensor<2x3xi32>) -> tensor<2x4x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<1x64xf32>) {
  // expected-error @+1 {{weight must have rank 1}}
  %0 = moe.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<?x64xf32>, tensor<1x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<64xbf16>) {
  // expected-error @+1 {{weight element type 'bf16' must match input element type 'f32'}}
  %0 = moe.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<?x64xf32>, tensor<64xbf16>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<48xf32>) {
  // expected-error @+1 {{weight size (48) must divide the input width (64)}}
  %0 = moe.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<?x64xf32>, tensor<48xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be > 0, got 0}}
  %0 = moe.rms_norm %x, %w {epsilon = 0.0 : f64} : tensor<?x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %0 = moe.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<f32>, tensor<64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{weight must have rank 2}}
  %0 = moe.linear %x, %w : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<32x64xbf16>) {
  // expected-error @+1 {{weight element type 'bf16' must match input element type 'f32'}}
  %0 = moe.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xbf16>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>) {
  // expected-error @+1 {{result element type 'f16' must match input element type 'f32'}}
  %0 = moe.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf16>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<32x48xf32>) {
  // expected-error @+1 {{weight dim 1 (in) is 48 but must equal the input width (64)}}
  %0 = moe.linear %x, %w : (tensor<?x64xf32>, tensor<32x48xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>) {
  // expected-error @+1 {{result shape [?, 64] must equal the input's leading dims plus weight dim 0 (out) [?, 32]}}
  %0 = moe.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{input must have rank 3}}
  %0 = moe.rope %x {num_heads = 4 : i64, theta = 1.0e4 : f64} : tensor<?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{num_heads must be >= 1, got 0}}
  %0 = moe.rope %x {num_heads = 0 : i64, theta = 1.0e4 : f64} : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{input width 64 is not divisible by num_heads 3}}
  %0 = moe.rope %x {num_heads = 3 : i64, theta = 1.0e4 : f64} : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x36xf32>) {
  // expected-error @+1 {{head width 9 must be even to rotate pairs}}
  %0 = moe.rope %x {num_heads = 4 : i64, theta = 1.0e4 : f64} : tensor<?x?x36xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{theta must be > 0, got -1}}
  %0 = moe.rope %x {num_heads = 4 : i64, theta = -1.0 : f64} : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x?x64xf32>, %p: tensor<3x?xi32>) {
  // expected-error @+1 {{positions shape [3, ?] must equal the input's [batch, sequence] [2, ?]}}
  %0 = moe.rope %x positions %p : tensor<3x?xi32> {num_heads = 4 : i64, theta = 1.0e4 : f64} : tensor<2x?x64xf32>
  return
}

// -----

func.func @f(%q: tensor<?x64xf32>, %k: tensor<?x?x32xf32>) {
  // expected-error @+1 {{query must have rank 3}}
  %0 = moe.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 2 : i64, causal} : tensor<?x64xf32>, tensor<?x?x32xf32>
  return
}

// -----

func.func @f(%q: tensor<?x?x64xf32>, %k: tensor<?x?x32xf32>) {
  // expected-error @+1 {{num_heads must be >= 1, got 0}}
  %0 = moe.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 0 : i64, causal} : tensor<?x?x64xf32>, tensor<?x?x32xf32>
  return
}

// -----

func.func @f(%q: tensor<?x?x64xf32>, %k: tensor<?x?x48xf32>) {
  // expected-error @+1 {{num_kv_heads 3 must divide num_heads 4}}
  %0 = moe.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 3 : i64, causal} : tensor<?x?x64xf32>, tensor<?x?x48xf32>
  return
}

// -----

func.func @f(%q: tensor<?x?x64xf32>, %k: tensor<?x?x32xbf16>) {
  // expected-error @+1 {{key element type 'bf16' must match query element type 'f32'}}
  %0 = moe.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 2 : i64, causal} : tensor<?x?x64xf32>, tensor<?x?x32xbf16>
  return
}

// -----

func.func @f(%q: tensor<2x5x64xf32>, %k: tensor<2x6x32xf32>) {
  // expected-error @+1 {{key [batch, sequence] [2, 6] must equal the query's [2, 5]}}
  %0 = moe.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 2 : i64, causal} : tensor<2x5x64xf32>, tensor<2x6x32xf32>
  return
}

// -----

func.func @f(%q: tensor<?x?x64xf32>, %k: tensor<?x?x64xf32>) {
  // expected-error @+1 {{key width is 64 but must equal num_kv_heads * head_dim (32)}}
  %0 = moe.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 2 : i64, causal} : tensor<?x?x64xf32>, tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%q: tensor<?x?x64xf32>) {
  // expected-error @+1 {{scale must be > 0, got 0}}
  %0 = moe.attention %q, %q, %q {num_heads = 4 : i64, num_kv_heads = 4 : i64, scale = 0.0 : f64} : tensor<?x?x64xf32>, tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%q: tensor<?x?x64xf32>, %k: tensor<?x?x32xf32>, %v: tensor<?x?x64xf32>) {
  // expected-error @+1 {{all of {key, value} have same type}}
  %0 = "moe.attention"(%q, %k, %v) <{num_heads = 4 : i64, num_kv_heads = 2 : i64}> : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%a: tensor<?x64xf32>, %b: tensor<?x64xbf16>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "moe.add"(%a, %b) : (tensor<?x64xf32>, tensor<?x64xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%a: tensor<?x64xi32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float values}}
  %0 = "moe.silu"(%a) : (tensor<?x64xi32>) -> tensor<?x64xi32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<4x64xbf16>) {
  // expected-error @+1 {{weight element type 'bf16' must match input element type 'f32'}}
  %0:3 = moe.router %x, %w {top_k = 2 : i64} : (tensor<?x?x64xf32>, tensor<4x64xbf16>) -> (tensor<?x?x4xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<4x32xf32>) {
  // expected-error @+1 {{weight dim 1 is 32 but must equal the input width (64)}}
  %0:3 = moe.router %x, %w {top_k = 2 : i64} : (tensor<?x?x64xf32>, tensor<4x32xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{weight must have rank 2}}
  %0:3 = moe.router %x, %w {top_k = 2 : i64} : (tensor<?x?x64xf32>, tensor<4xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<4x64xf32>) {
  // expected-error @+1 {{top_k 5 must be in [1, number of experts = 4]}}
  %0:3 = moe.router %x, %w {top_k = 5 : i64} : (tensor<?x?x64xf32>, tensor<4x64xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x5xf32>, tensor<?x?x5xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<4x64xf32>) {
  // expected-error @+1 {{top_k 0 must be in [1, number of experts = 4]}}
  %0:3 = moe.router %x, %w {top_k = 0 : i64} : (tensor<?x?x64xf32>, tensor<4x64xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x0xf32>, tensor<?x?x0xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<4x64xf32>) {
  // expected-error @+1 {{logits shape [?, ?, 8] must equal the input's leading dims plus experts [?, ?, 4]}}
  %0:3 = moe.router %x, %w {top_k = 2 : i64} : (tensor<?x?x64xf32>, tensor<4x64xf32>) -> (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<4x64xf32>) {
  // expected-error @+1 {{weights shape [?, 2] must equal the input's leading dims plus top_k [?, ?, 2]}}
  %0:3 = moe.router %x, %w {top_k = 2 : i64} : (tensor<?x?x64xf32>, tensor<4x64xf32>) -> (tensor<?x?x4xf32>, tensor<?x2xf32>, tensor<?x?x2xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<4x64xf32>) {
  // expected-error @+1 {{indices shape [?, ?, 3] must equal the input's leading dims plus top_k [?, ?, 2]}}
  %0:3 = moe.router %x, %w {top_k = 2 : i64} : (tensor<?x?x64xf32>, tensor<4x64xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x2xf32>, tensor<?x?x3xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %i: tensor<?x?x2xi32>) {
  // expected-error @+1 {{num_experts must be >= 1, got 0}}
  %0:3 = moe.dispatch %x, %i {num_experts = 0 : i64} : (tensor<?x?x64xf32>, tensor<?x?x2xi32>) -> (tensor<?x64xf32>, tensor<4xi64>, tensor<?xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %i: tensor<?x2xi32>) {
  // expected-error @+1 {{indices must have rank 3}}
  %0:3 = moe.dispatch %x, %i {num_experts = 4 : i64} : (tensor<?x?x64xf32>, tensor<?x2xi32>) -> (tensor<?x64xf32>, tensor<4xi64>, tensor<?xi32>)
  return
}

// -----

func.func @f(%x: tensor<2x3x64xf32>, %i: tensor<2x4x2xi32>) {
  // expected-error @+1 {{indices leading dims [2, 4] must equal the input's [2, 3]}}
  %0:3 = moe.dispatch %x, %i {num_experts = 4 : i64} : (tensor<2x3x64xf32>, tensor<2x4x2xi32>) -> (tensor<?x64xf32>, tensor<4xi64>, tensor<?xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %i: tensor<?x?x2xi32>) {
  // expected-error @+1 {{grouped element type 'bf16' must match input element type 'f32'}}
  %0:3 = moe.dispatch %x, %i {num_experts = 4 : i64} : (tensor<?x?x64xf32>, tensor<?x?x2xi32>) -> (tensor<?x64xbf16>, tensor<4xi64>, tensor<?xi32>)
  return
}

// -----

func.func @f(%x: tensor<2x3x64xf32>, %i: tensor<2x3x2xi32>) {
  // expected-error @+1 {{grouped shape [6, 64] must equal [tokens * top_k, input width] [12, 64]}}
  %0:3 = moe.dispatch %x, %i {num_experts = 4 : i64} : (tensor<2x3x64xf32>, tensor<2x3x2xi32>) -> (tensor<6x64xf32>, tensor<4xi64>, tensor<6xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %i: tensor<?x?x2xi32>) {
  // expected-error @+1 {{counts shape [8] must equal [num_experts] [4]}}
  %0:3 = moe.dispatch %x, %i {num_experts = 4 : i64} : (tensor<?x?x64xf32>, tensor<?x?x2xi32>) -> (tensor<?x64xf32>, tensor<8xi64>, tensor<?xi32>)
  return
}

// -----

func.func @f(%x: tensor<2x3x64xf32>, %i: tensor<2x3x2xi32>) {
  // expected-error @+1 {{source_slots shape [6] must equal [grouped rows] [12]}}
  %0:3 = moe.dispatch %x, %i {num_experts = 4 : i64} : (tensor<2x3x64xf32>, tensor<2x3x2xi32>) -> (tensor<12x64xf32>, tensor<4xi64>, tensor<6xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %c: tensor<4xi64>, %g: tensor<4x128x64xf32>, %u: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{input must have rank 2}}
  %0 = moe.expert_mlp %x, %c, %g, %u, %d : tensor<?x?x64xf32>, tensor<4xi64>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %c: tensor<4xi64>, %g: tensor<128x64xf32>, %u: tensor<128x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{gate must have rank 3}}
  %0 = moe.expert_mlp %x, %c, %g, %u, %d : tensor<?x64xf32>, tensor<4xi64>, tensor<128x64xf32>, tensor<128x64xf32>, tensor<4x64x128xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %c: tensor<4xi64>, %g: tensor<4x128x64xf32>, %u: tensor<4x96x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{up type 'tensor<4x96x64xf32>' must equal gate type 'tensor<4x128x64xf32>'}}
  %0 = moe.expert_mlp %x, %c, %g, %u, %d : tensor<?x64xf32>, tensor<4xi64>, tensor<4x128x64xf32>, tensor<4x96x64xf32>, tensor<4x64x128xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %c: tensor<4xi64>, %g: tensor<4x128x64xbf16>, %u: tensor<4x128x64xbf16>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{gate element type 'bf16' must match input element type 'f32'}}
  %0 = moe.expert_mlp %x, %c, %g, %u, %d : tensor<?x64xf32>, tensor<4xi64>, tensor<4x128x64xbf16>, tensor<4x128x64xbf16>, tensor<4x64x128xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %c: tensor<4xi64>, %g: tensor<4x128x64xf32>, %u: tensor<4x128x64xf32>, %d: tensor<4x64x128xbf16>) {
  // expected-error @+1 {{down element type 'bf16' must match input element type 'f32'}}
  %0 = moe.expert_mlp %x, %c, %g, %u, %d : tensor<?x64xf32>, tensor<4xi64>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xbf16>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %c: tensor<4xi64>, %g: tensor<4x128x32xf32>, %u: tensor<4x128x32xf32>, %d: tensor<4x32x128xf32>) {
  // expected-error @+1 {{gate dim 2 is 32 but must equal the input width (64)}}
  %0 = moe.expert_mlp %x, %c, %g, %u, %d : tensor<?x64xf32>, tensor<4xi64>, tensor<4x128x32xf32>, tensor<4x128x32xf32>, tensor<4x32x128xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %c: tensor<4xi64>, %g: tensor<4x128x64xf32>, %u: tensor<4x128x64xf32>, %d: tensor<4x128x64xf32>) {
  // expected-error @+1 {{down shape [4, 128, 64] must equal [experts, model width, expert width] from gate [4, 64, 128]}}
  %0 = moe.expert_mlp %x, %c, %g, %u, %d : tensor<?x64xf32>, tensor<4xi64>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %c: tensor<3xi64>, %g: tensor<4x128x64xf32>, %u: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{counts shape [3] must equal [experts] [4]}}
  %0 = moe.expert_mlp %x, %c, %g, %u, %d : tensor<?x64xf32>, tensor<3xi64>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>
  return
}

// -----

func.func @f(%y: tensor<?x?x64xf32>, %w: tensor<?x?x2xf32>, %s: tensor<?xi32>) {
  // expected-error @+1 {{input must have rank 2}}
  %0 = moe.combine %y, %w, %s : (tensor<?x?x64xf32>, tensor<?x?x2xf32>, tensor<?xi32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%y: tensor<?x64xf32>, %w: tensor<f32>, %s: tensor<?xi32>) {
  // expected-error @+1 {{weights must have rank >= 1}}
  %0 = moe.combine %y, %w, %s : (tensor<?x64xf32>, tensor<f32>, tensor<?xi32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%y: tensor<?x64xf32>, %w: tensor<?x?x2xf32>, %s: tensor<?x1xi32>) {
  // expected-error @+1 {{source_slots must have rank 1}}
  %0 = moe.combine %y, %w, %s : (tensor<?x64xf32>, tensor<?x?x2xf32>, tensor<?x1xi32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%y: tensor<?x64xf32>, %w: tensor<?x?x2xf32>, %s: tensor<?xi32>) {
  // expected-error @+1 {{result element type 'bf16' must match input element type 'f32'}}
  %0 = moe.combine %y, %w, %s : (tensor<?x64xf32>, tensor<?x?x2xf32>, tensor<?xi32>) -> tensor<?x?x64xbf16>
  return
}

// -----

func.func @f(%y: tensor<12x64xf32>, %w: tensor<?x?x2xf32>, %s: tensor<10xi32>) {
  // expected-error @+1 {{source_slots size is 10 but must equal the input rows (12)}}
  %0 = moe.combine %y, %w, %s : (tensor<12x64xf32>, tensor<?x?x2xf32>, tensor<10xi32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%y: tensor<10x64xf32>, %w: tensor<2x3x2xf32>, %s: tensor<10xi32>) {
  // expected-error @+1 {{input rows is 10 but must equal tokens * top_k (12)}}
  %0 = moe.combine %y, %w, %s : (tensor<10x64xf32>, tensor<2x3x2xf32>, tensor<10xi32>) -> tensor<2x3x64xf32>
  return
}

// -----

func.func @f(%y: tensor<?x64xf32>, %w: tensor<?x?x2xf32>, %s: tensor<?xi32>) {
  // expected-error @+1 {{result shape [?, 64] must equal the weights' leading dims plus the input width [?, ?, 64]}}
  %0 = moe.combine %y, %w, %s : (tensor<?x64xf32>, tensor<?x?x2xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%l: tensor<f32>, %y: tensor<i32>) {
  // expected-error @+1 {{logits must have rank >= 1}}
  %0 = moe.cross_entropy %l, %y : tensor<f32>, tensor<i32>
  return
}

// -----

func.func @f(%l: tensor<2x3x256xf32>, %y: tensor<2x4xi32>) {
  // expected-error @+1 {{labels shape [2, 4] must equal the logits' leading dims [2, 3]}}
  %0 = moe.cross_entropy %l, %y : tensor<2x3x256xf32>, tensor<2x4xi32>
  return
}

// -----

func.func @f(%labels: tensor<8xi32>) {
  // expected-error @+1 {{needs the router logits of at least one layer}}
  %0 = "moe.load_balancing_loss"(%labels) <{top_k = 2 : i64}> : (tensor<8xi32>) -> tensor<f32>
  return
}

// -----

func.func @f(%l: tensor<?xi32>, %a: tensor<?x4xf32>, %b: tensor<?x8xf32>) {
  // expected-error @+1 {{experts of router logits #1 is 8 but must equal the experts of #0 (4)}}
  %0 = moe.load_balancing_loss %l, %a, %b {top_k = 2 : i64} : tensor<?xi32>, tensor<?x4xf32>, tensor<?x8xf32>
  return
}

// -----

func.func @f(%l: tensor<?xi32>, %a: tensor<?x?xf32>) {
  // expected-error @+1 {{router logits must have a static expert count}}
  %0 = moe.load_balancing_loss %l, %a {top_k = 2 : i64} : tensor<?xi32>, tensor<?x?xf32>
  return
}

// -----

func.func @f(%l: tensor<?xi32>, %a: tensor<?x4xf32>) {
  // expected-error @+1 {{top_k 5 must be in [1, number of experts = 4]}}
  %0 = moe.load_balancing_loss %l, %a {top_k = 5 : i64} : tensor<?xi32>, tensor<?x4xf32>
  return
}

// -----

func.func @f(%l: tensor<?xi32>, %a: tensor<f32>) {
  // expected-error @+1 {{router logits must have rank >= 1}}
  %0 = moe.load_balancing_loss %l, %a {top_k = 1 : i64} : tensor<?xi32>, tensor<f32>
  return
}

// -----

func.func @f(%l: tensor<2x8xi32>, %a: tensor<2x8x4xf32>, %b: tensor<15x4xf32>) {
  // expected-error @+1 {{has 16 labels but router logits #1 have 15 rows; the losses need one label per token}}
  %0 = moe.load_balancing_loss %l, %a, %b {top_k = 1 : i64} : tensor<2x8xi32>, tensor<2x8x4xf32>, tensor<15x4xf32>
  return
}

// -----

func.func @f(%l: tensor<4xi32>, %a: tensor<2x8x4xf32>) {
  // expected-error @+1 {{has 4 labels but router logits #0 have 16 rows}}
  %0 = moe.router_z_loss %l, %a : tensor<4xi32>, tensor<2x8x4xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{count 7 exceeds the range 6}}
  %0 = moe.random_indices {count = 7 : i64, range = 6 : i64, seed = 1 : i64, stream = "s"} : tensor<7xi64>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{range must be >= 1, got 0}}
  %0 = moe.random_indices {count = 2 : i64, range = 0 : i64, seed = 1 : i64, stream = "s"} : tensor<2xi64>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{result shape [3] must equal [count] [2]}}
  %0 = moe.random_indices {count = 2 : i64, range = 6 : i64, seed = 1 : i64, stream = "s"} : tensor<3xi64>
  return
}

// -----

func.func @f(%w: tensor<6x8x2xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{input must have rank 2}}
  %m, %s = moe.slice_moments %w, %i {axis = 0 : i64} : tensor<6x8x2xf32>, tensor<3xi64>
  return
}

// -----

func.func @f(%w: tensor<6x8xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{axis must be 0 (rows) or 1 (columns), got 2}}
  %m, %s = moe.slice_moments %w, %i {axis = 2 : i64} : tensor<6x8xf32>, tensor<3xi64>
  return
}

// -----

func.func @f(%w: tensor<6x8xf32>, %i: tensor<9xi64>) {
  // expected-error @+1 {{9 indices exceed the 8 columns of the input}}
  %m, %s = moe.slice_moments %w, %i {axis = 1 : i64} : tensor<6x8xf32>, tensor<9xi64>
  return
}

// -----

func.func @f(%w: tensor<6x8xf32>, %i: tensor<7xi64>, %m: tensor<f32>) {
  // expected-error @+1 {{7 indices exceed the 6 rows of the input}}
  %0 = moe.resample_slice %w, %i, %m, %m {axis = 0 : i64, seed = 1 : i64, stream = "s"} : tensor<6x8xf32>, tensor<7xi64>
  return
}

// -----

func.func @f(%w: tensor<6x8xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{std must be >= 0, got -1}}
  %0 = moe.add_noise_slice %w, %i {axis = 0 : i64, std = -1.0 : f64, seed = 1 : i64, stream = "s"} : tensor<6x8xf32>, tensor<3xi64>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{distribution must be "normal" or "centered_uniform", got "cauchy"}}
  %0 = moe.random_tensor {distribution = "cauchy", std = 0.02 : f64, seed = 1 : i64, stream = "s"} : tensor<2x8xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{result must have a static shape}}
  %0 = moe.random_tensor {distribution = "normal", std = 0.02 : f64, seed = 1 : i64, stream = "s"} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%a: tensor<6x8xf32>, %b: tensor<6x7xf32>) {
  // expected-error @+1 {{input #1 has type 'tensor<6x7xf32>' but input #0 has 'tensor<6x8xf32>'}}
  %0 = moe.stack %a, %b : tensor<6x8xf32>, tensor<6x7xf32> -> tensor<2x6x8xf32>
  return
}

// -----

func.func @f(%a: tensor<6x8xf32>) {
  // expected-error @+1 {{result shape [3, 6, 8] must equal [inputs, input shape...] [2, 6, 8]}}
  %0 = moe.stack %a, %a : tensor<6x8xf32>, tensor<6x8xf32> -> tensor<3x6x8xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{needs at least one input}}
  %0 = "moe.stack"() : () -> tensor<0x6xf32>
  return
}

// -----

func.func @f(%v: tensor<4xf32>) {
  // expected-error @+1 {{@nowhere does not name a moe.param}}
  moe.write_param @nowhere = %v : tensor<4xf32>
  return
}

// -----

moe.param @p : tensor<4xf32> init #moe.constant<0.0>
func.func @f(%v: tensor<8xf32>) {
  // expected-error @+1 {{value type 'tensor<8xf32>' does not match the declared type 'tensor<4xf32>' of @p}}
  moe.write_param @p = %v : tensor<8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{top_k 5 must be in [1, number of experts = 4]}}
  %y, %l = moe.fused_experts %x, %r, %g, %g, %d {top_k = 5 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{activation 'gelu' is not supported (expected "swiglu")}}
  %y, %l = moe.fused_experts %x, %r, %g, %g, %d {top_k = 2 : i64, activation = "gelu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<8x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{gate dim 0 is 4 but must equal the router's experts (8)}}
  %y, %l = moe.fused_experts %x, %r, %g, %g, %d {top_k = 2 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<8x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x128x64xf32>) {
  // expected-error @+1 {{down shape [4, 128, 64] must equal [experts, model width, expert width] from gate [4, 64, 128]}}
  %y, %l = moe.fused_experts %x, %r, %g, %g, %d {top_k = 2 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{logits shape [2, 8, 3] must equal the input's leading dims plus experts [2, 8, 4]}}
  %y, %l = moe.fused_experts %x, %r, %g, %g, %d {top_k = 2 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x3xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>, %labels: tensor<2x7xi32>) {
  // expected-error @+1 {{labels shape [2, 7] must equal the input's leading dims [2, 8]}}
  %y, %l = moe.fused_experts %x, %r, %g, %g, %d labels %labels {top_k = 2 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>, tensor<2x7xi32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>, %l: tensor<2x8x4xf32>, %labels: tensor<8x2xi32>) {
  // expected-error @+1 {{labels shape [8, 2] must equal the input's leading dims [2, 8]}}
  %a:5 = moe.fused_experts_grad %x, %r, %g, %g, %d, %l, %x labels %labels {top_k = 2 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>, tensor<2x8x4xf32>, tensor<2x8x64xf32>, tensor<8x2xi32>) -> (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>, %l: tensor<2x8x4xf32>, %dl: tensor<2x8x3xf32>) {
  // expected-error @+1 {{logits_grad type 'tensor<2x8x3xf32>' must equal the logits type 'tensor<2x8x4xf32>'}}
  %a:5 = moe.fused_experts_grad %x, %r, %g, %g, %d, %l, %x, %dl {top_k = 2 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>, tensor<2x8x4xf32>, tensor<2x8x64xf32>, tensor<2x8x3xf32>) -> (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>)
  return
}

// -----

// expected-error @+1 {{cache type must have a static shape}}
moe.kv_cache @c : tensor<2x?x32xf32>

// -----

// expected-error @+1 {{cache must have rank 3}}
moe.kv_cache @c : tensor<2x32xf32>

// -----

func.func @f(%rows: tensor<2x1x32xf32>, %pos: tensor<2x1xi32>) {
  // expected-error @+1 {{@missing does not name a moe.kv_cache}}
  moe.cache_write @missing = %rows positions %pos : tensor<2x1x32xf32>, tensor<2x1xi32>
  return
}

// -----

moe.kv_cache @c : tensor<2x16x32xf32>
func.func @f(%rows: tensor<2x1x16xf32>, %pos: tensor<2x1xi32>) {
  // expected-error @+1 {{cache width is 32 but must equal the row width (16)}}
  moe.cache_write @c = %rows positions %pos : tensor<2x1x16xf32>, tensor<2x1xi32>
  return
}

// -----

moe.kv_cache @c : tensor<2x16x32xf32>
func.func @f(%rows: tensor<3x1x32xf32>, %pos: tensor<3x1xi32>) {
  // expected-error @+1 {{cache batch is 2 but must equal rows batch (3)}}
  moe.cache_write @c = %rows positions %pos : tensor<3x1x32xf32>, tensor<3x1xi32>
  return
}

// -----

moe.kv_cache @c : tensor<2x16x32xf32>
func.func @f(%rows: tensor<2x4x32xf32>, %pos: tensor<2x1xi32>) {
  // expected-error @+1 {{positions shape [2, 1] must equal rows [batch, rows] [2, 4]}}
  moe.cache_write @c = %rows positions %pos : tensor<2x4x32xf32>, tensor<2x1xi32>
  return
}

// -----

moe.kv_cache @c : tensor<2x16x32xbf16>
func.func @f(%rows: tensor<2x1x32xf32>, %pos: tensor<2x1xi32>) {
  // expected-error @+1 {{element type}}
  moe.cache_write @c = %rows positions %pos : tensor<2x1x32xf32>, tensor<2x1xi32>
  return
}

// -----

moe.kv_cache @k : tensor<2x16x32xf32>
moe.kv_cache @v : tensor<2x16x32xf32>
func.func @f(%q: tensor<2x1x64xf32>, %pos: tensor<2x1xi32>) -> tensor<2x1x64xf32> {
  // expected-error @+1 {{num_kv_heads 3 must divide num_heads 4}}
  %a = moe.cached_attention %q positions %pos keys @k values @v
      {num_heads = 4 : i64, num_kv_heads = 3 : i64} : tensor<2x1x64xf32>, tensor<2x1xi32>
  return %a : tensor<2x1x64xf32>
}

// -----

moe.kv_cache @k : tensor<2x16x32xf32>
moe.kv_cache @v : tensor<2x16x32xf32>
func.func @f(%q: tensor<2x1x64xf32>, %pos: tensor<2x1xi32>) -> tensor<2x1x64xf32> {
  // expected-error @+1 {{cache width is 32 but must equal the row width (64)}}
  %a = moe.cached_attention %q positions %pos keys @k values @v
      {num_heads = 4 : i64, num_kv_heads = 4 : i64} : tensor<2x1x64xf32>, tensor<2x1xi32>
  return %a : tensor<2x1x64xf32>
}

// -----

moe.kv_cache @k : tensor<2x16x32xf32>
moe.kv_cache @v : tensor<2x8x32xf32>
func.func @f(%q: tensor<2x1x64xf32>, %pos: tensor<2x1xi32>) -> tensor<2x1x64xf32> {
  // expected-error @+1 {{key cache 'tensor<2x16x32xf32>' and value cache 'tensor<2x8x32xf32>' must have the same type}}
  %a = moe.cached_attention %q positions %pos keys @k values @v
      {num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<2x1x64xf32>, tensor<2x1xi32>
  return %a : tensor<2x1x64xf32>
}

// -----

moe.kv_cache @k : tensor<2x16x32xf32>
func.func @f(%q: tensor<2x1x64xf32>, %pos: tensor<2x1xi32>) -> tensor<2x1x64xf32> {
  // expected-error @+1 {{@v does not name a moe.kv_cache}}
  %a = moe.cached_attention %q positions %pos keys @k values @v
      {num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<2x1x64xf32>, tensor<2x1xi32>
  return %a : tensor<2x1x64xf32>
}

// -----

func.func @f(%x: tensor<2x4x64xf32>, %i: tensor<3x1xi32>) -> tensor<3x1x64xf32> {
  // expected-error @+1 {{index batch is 3 but must equal the input batch (2)}}
  %s = moe.select_rows %x[%i] : (tensor<2x4x64xf32>, tensor<3x1xi32>) -> tensor<3x1x64xf32>
  return %s : tensor<3x1x64xf32>
}

// -----

func.func @f(%x: tensor<2x4x64xf32>, %i: tensor<2x1xi32>) -> tensor<2x2x64xf32> {
  // expected-error @+1 {{result shape [2, 2, 64] must equal the index shape plus the input width [2, 1, 64]}}
  %s = moe.select_rows %x[%i] : (tensor<2x4x64xf32>, tensor<2x1xi32>) -> tensor<2x2x64xf32>
  return %s : tensor<2x2x64xf32>
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %b: tensor<32xf32>) {
  // expected-error @+1 {{bias size is 32 but must equal the input width (64)}}
  %0 = moe.add_bias %x, %b : tensor<?x?x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %b: tensor<64xbf16>) {
  // expected-error @+1 {{bias element type}}
  %0 = moe.add_bias %x, %b : tensor<?x?x64xf32>, tensor<64xbf16>
  return
}

// -----

func.func @f(%dy: tensor<?x?x64xf32>) {
  // expected-error @+1 {{bias gradient size is 48 but must equal the result gradient's width (64)}}
  %0 = moe.bias_grad %dy : tensor<?x?x64xf32> -> tensor<48xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{limit must be finite and > 0, got 0}}
  %0 = moe.clamp %x {limit = 0.0 : f64} : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %g: tensor<2x8x2xf32>) {
  // expected-error @+1 {{gate shape [2, 8, 2] must equal the input's leading dims and width 1 [2, 8, 1]}}
  %0 = moe.sigmoid_gate %x, %g : tensor<2x8x64xf32>, tensor<2x8x2xf32>
  return
}

// -----

func.func @f(%w: tensor<8x6xf32>) {
  // expected-error @+1 {{offset 5 and size 2 do not fit in dimension 1 of size 6}}
  %0 = moe.slice %w {axis = 1 : i64, offset = 5 : i64} : tensor<8x6xf32> -> tensor<8x2xf32>
  return
}

// -----

func.func @f(%w: tensor<8x6xf32>) {
  // expected-error @+1 {{axis must be 0 or 1, got 2}}
  %0 = moe.slice %w {axis = 2 : i64, offset = 0 : i64} : tensor<8x6xf32> -> tensor<8x2xf32>
  return
}

// -----

func.func @f(%w: tensor<8x6xf32>) {
  // expected-error @+1 {{result dimension 0 is 4 but must equal the input's (8)}}
  %0 = moe.slice %w {axis = 1 : i64, offset = 0 : i64} : tensor<8x6xf32> -> tensor<4x2xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>, %l: tensor<2x8x4xf32>, %h: tensor<32x128xf32>) {
  // expected-error @+1 {{saved must be the gate and up hidden states, got 1 values}}
  %a:5 = moe.fused_experts_grad %x, %r, %g, %g, %d, %l, %x saved(%h) {top_k = 2 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>, tensor<2x8x4xf32>, tensor<2x8x64xf32>, tensor<32x128xf32>) -> (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>) {
  // expected-error @+1 {{hidden shape [16, 128] must equal [tokens * top_k, expert width] [32, 128]}}
  %y, %l, %hg, %hu = moe.fused_experts_train %x, %r, %g, %g, %d {top_k = 2 : i64, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>, tensor<16x128xf32>, tensor<16x128xf32>)
  return
}
