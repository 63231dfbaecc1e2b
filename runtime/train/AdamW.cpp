//===- AdamW.cpp - the optimiser and learning-rate schedule ---------------===//

#include "runtime/train/AdamW.h"

#include "runtime/base/Float16.h"

#include <algorithm>
#include <cmath>

namespace moert::train {

double learningRate(const OptimizerOptions &o, int64_t step) {
  if (step < o.warmupSteps)
    return o.lr * double(step + 1) / double(o.warmupSteps);
  double progress = double(step - o.warmupSteps) /
                    double(std::max<int64_t>(1, o.totalSteps - o.warmupSteps));
  progress = std::min(progress, 1.0);
  return o.minLr + 0.5 * (o.lr - o.minLr) * (1.0 + std::cos(M_PI * progress));
}

double sumOfSquares(const GradientView &grad) {
  // Fixed chunks summed in order: the same value for any thread count.
  constexpr int64_t kChunk = 1 << 14;
  int64_t chunks = (grad.count + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    // 16 independent partial sums keep the adds from waiting on each
    // other; their order is fixed, so the sum is too.
    constexpr int kLanes = 16;
    float lanes[kLanes] = {};
    int64_t begin = c * kChunk, end = std::min(grad.count, begin + kChunk);
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes)
      for (int j = 0; j < kLanes; ++j)
        lanes[j] += grad.data[i + j] * grad.data[i + j];
    double chunkSum = 0;
    for (; i < end; ++i)
      chunkSum += double(grad.data[i]) * grad.data[i];
    for (float lane : lanes)
      chunkSum += lane;
    partial[c] = chunkSum;
  }
  double sum = 0;
  for (double part : partial)
    sum += part;
  return sum;
}

double globalNorm(const std::vector<GradientView> &grads) {
  double sum = 0;
  for (const GradientView &grad : grads)
    sum += sumOfSquares(grad);
  return std::sqrt(sum);
}

AdamWStep adamwStep(bool decay, double lr, int64_t step, double scale,
                    const OptimizerOptions &o) {
  // fp32 arithmetic, as torch's AdamW on fp32 tensors; the constants are
  // formed in double.
  return {float(decay ? 1.0 - lr * o.weightDecay : 1.0),
          float(lr / (1.0 - std::pow(o.beta1, double(step)))),
          float(1.0 / std::sqrt(1.0 - std::pow(o.beta2, double(step)))),
          float(o.beta1),
          float(o.beta2),
          float(o.eps),
          float(scale)};
}

void adamwUpdate(float *master, const float *grad, AdamState &state,
                 int64_t count, bool decay, double lr, int64_t step,
                 double scale, const OptimizerOptions &o, uint16_t *bf16Copy) {
  if (state.expAvg.empty()) {
    state.expAvg.assign(count, 0.0f);
    state.expAvgSq.assign(count, 0.0f);
  }
  const AdamWStep c = adamwStep(decay, lr, step, scale, o);
  const float decayFactor = c.decayFactor, stepSize = c.stepSize,
              invBias2Sqrt = c.invBias2Sqrt, b1 = c.beta1, b2 = c.beta2,
              eps = c.eps, gradScale = c.gradScale;
  float *m = state.expAvg.data(), *v = state.expAvgSq.data();
  auto update = [&](int64_t i) {
    float g = grad[i] * gradScale;
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    return master[i] = master[i] * decayFactor -
                       stepSize * mi / (std::sqrt(vi) * invBias2Sqrt + eps);
  };
  // Two loops rather than a branch inside one, so both vectorise.
  if (bf16Copy) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; ++i)
      bf16Copy[i] = floatToBf16(update(i));
  } else {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; ++i)
      update(i);
  }
}

} // namespace moert::train
