// RUN: moe-opt %s --split-input-file --verify-diagnostics --moe-print-stats
// expected-error @below {{no function @forward to compute statistics of}}
module {
  func.func @other() {
    return
  }
}

// -----

func.func @forward(%g: tensor<?x16xf32>, %c: tensor<4xi64>, %w1: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{counts do not come from moe.dispatch: cannot tell how many experts each token uses}}
  %y = moe.expert_mlp %g, %c, %w1, %w1, %w2 : tensor<?x16xf32>, tensor<4xi64>, tensor<4x32x16xf32>, tensor<4x32x16xf32>, tensor<4x16x32xf32>
  return %y : tensor<?x16xf32>
}
