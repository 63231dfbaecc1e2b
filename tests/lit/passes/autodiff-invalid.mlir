// RUN: moe-opt %s --moe-autodiff -split-input-file -verify-diagnostics

// An op without a vector-Jacobian product on the path to the loss.
moe.param @w : tensor<4x8xf32> init #moe.normal<mean = 0.0, std = 0.02>
func.func @forward(%ids: tensor<1x2xi32>) -> tensor<1x2x4xf32> {
  %w = moe.read_param @w : tensor<4x8xf32>
  // A constant (no operands) passes its gradient on to nothing: no error.
  %idx = moe.random_indices {count = 2 : i64, range = 8 : i64, seed = 1 : i64, stream = "i"} : tensor<2xi64>
  // expected-error @+1 {{'moe.add_noise_slice' op is not differentiable: a loss depends on its results}}
  %table = moe.add_noise_slice %w, %idx {axis = 1 : i64, std = 0.02 : f64, seed = 7 : i64, stream = "s"} : tensor<4x8xf32>, tensor<2xi64>
  %h = moe.embedding %table[%ids] : (tensor<4x8xf32>, tensor<1x2xi32>) -> tensor<1x2x8xf32>
  %logits = moe.linear %h, %w : (tensor<1x2x8xf32>, tensor<4x8xf32>) -> tensor<1x2x4xf32>
  return %logits : tensor<1x2x4xf32>
}

// -----

// expected-error @+1 {{moe-autodiff: no function @forward to differentiate}}
module {
}
