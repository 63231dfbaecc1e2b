// A tiny model using the example dialect plugin's op: one scaled residual
// block between the embedding and the head.
moe.param @"model.embed_tokens.weight" : tensor<16x8xf32> init #moe.normal<mean = 0.0, std = 0.5>
moe.param @"model.block.weight" : tensor<8x8xf32> init #moe.normal<mean = 0.0, std = 0.5>
moe.param @"lm_head.weight" : tensor<16x8xf32> init #moe.normal<mean = 0.0, std = 0.5>
func.func @forward(%ids: tensor<2x4xi32>) -> tensor<2x4x16xf32> {
  %table = moe.read_param @"model.embed_tokens.weight" : tensor<16x8xf32>
  %h = moe.embedding %table[%ids] : (tensor<16x8xf32>, tensor<2x4xi32>) -> tensor<2x4x8xf32>
  %w = moe.read_param @"model.block.weight" : tensor<8x8xf32>
  %f = moe.linear %h, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  %a = moe.silu %f : tensor<2x4x8xf32>
  %r = moe_example.scaled_residual %h, %a {scale = 0.25 : f64} : tensor<2x4x8xf32>
  %head = moe.read_param @"lm_head.weight" : tensor<16x8xf32>
  %logits = moe.linear %r, %head : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
  return %logits : tensor<2x4x16xf32>
}
