//===- AdamW.h - the optimiser and learning-rate schedule -------*- C++ -*-===//
//
// torch.optim.AdamW semantics (decoupled weight decay, bias-corrected
// moments, eps added after the square root) on fp32 master weights, with
// torch.nn.utils.clip_grad_norm_ clipping and a linear warm-up followed by
// cosine decay. tests/reference/train_reference.py implements the same from
// the same definitions; the end-to-end test holds the two together.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TRAIN_ADAMW_H
#define MOERT_TRAIN_ADAMW_H

#include "runtime/exec/Backend.h"

#include <cstdint>
#include <vector>

namespace moert::train {

struct OptimizerOptions {
  double lr = 1e-3;
  double minLr = 1e-4;
  int64_t warmupSteps = 0;
  int64_t totalSteps = 1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weightDecay = 0.1;
  double clip = 1.0; // max global gradient norm; <= 0 disables clipping
  /// A step whose loss or gradient norm is not finite is skipped (no
  /// update) instead of failing.
  bool skipNonFinite = false;
};

/// The learning rate of step `step` (0-based): lr * (step + 1) / warmup
/// during warm-up, then cosine from lr down to minLr at totalSteps.
double learningRate(const OptimizerOptions &options, int64_t step);

/// One parameter's gradient.
struct GradientView {
  const float *data;
  int64_t count;
};

/// The sum of squares of one gradient, in double, in a fixed order (the
/// same for any thread count).
double sumOfSquares(const GradientView &grad);

/// The global L2 norm of all gradients: the square root of their
/// sumOfSquares added in order.
double globalNorm(const std::vector<GradientView> &grads);

/// One parameter tensor's optimiser state.
struct AdamState {
  std::vector<float> expAvg, expAvgSq;
};

/// The constants of one AdamW update (`step` 1-based, as torch counts it),
/// for the host's adamwUpdate and a device optimiser alike.
AdamWStep adamwStep(bool decay, double lr, int64_t step, double scale,
                    const OptimizerOptions &options);

/// Scales `grad` by `scale` and applies one AdamW update to `master`
/// (`step` is 1-based, as torch counts it). When `bf16Copy` is given, the
/// updated master is also rounded into it in the same pass (the compute
/// copy bf16 kernels read).
void adamwUpdate(float *master, const float *grad, AdamState &state,
                 int64_t count, bool decay, double lr, int64_t step,
                 double scale, const OptimizerOptions &options,
                 uint16_t *bf16Copy = nullptr);

} // namespace moert::train

#endif // MOERT_TRAIN_ADAMW_H
