// The example pass plugin loads into moe-opt and rewrites every moe.rope.
// RUN: moe-opt %s --load-pass-plugin=%moec_libs/MoeExamplePlugin.so \
// RUN:   --pass-pipeline='builtin.module(moe-example-set-rope-theta{theta=500000})' \
// RUN:   | FileCheck %s
// RUN: not moe-opt %s --load-pass-plugin=%moec_libs/MoeExamplePlugin.so \
// RUN:   --pass-pipeline='builtin.module(moe-example-set-rope-theta{theta=-1})' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=BAD
// A plugin that cannot be loaded is reported (MlirOptMain then goes on
// without it, so a pipeline naming its pass fails).
// RUN: not moe-opt %s --load-pass-plugin=%t.does-not-exist.so \
// RUN:   --pass-pipeline='builtin.module(moe-example-set-rope-theta)' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NOLIB

// CHECK-LABEL: func.func @rotate
func.func @rotate(%q: tensor<?x?x64xf32>, %k: tensor<?x?x32xf32>)
    -> (tensor<?x?x64xf32>, tensor<?x?x32xf32>) {
  // CHECK: moe.rope %{{.*}} {num_heads = 4 : i64, theta = 5.000000e+05 : f64}
  %0 = moe.rope %q {num_heads = 4 : i64, theta = 1.0e+04 : f64} : tensor<?x?x64xf32>
  // CHECK: moe.rope %{{.*}} {num_heads = 2 : i64, theta = 5.000000e+05 : f64}
  %1 = moe.rope %k {num_heads = 2 : i64, theta = 1.0e+04 : f64} : tensor<?x?x32xf32>
  return %0, %1 : tensor<?x?x64xf32>, tensor<?x?x32xf32>
}

// BAD: error: theta must be > 0, got -1
// NOLIB: Failed to load passes from '{{.*}}does-not-exist.so'
// NOLIB: 'moe-example-set-rope-theta' does not refer to a registered pass
