//===- AdamW.cpp - the optimiser and learning-rate schedule ---------------===//

#include "runtime/train/AdamW.h"

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

double globalNorm(const std::vector<std::vector<float>> &grads) {
  double sum = 0;
  for (const std::vector<float> &grad : grads) {
    double part = 0;
#pragma omp parallel for reduction(+ : part) schedule(static)
    for (size_t i = 0; i < grad.size(); ++i)
      part += double(grad[i]) * grad[i];
    sum += part;
  }
  return std::sqrt(sum);
}

void adamwUpdate(float *master, const float *grad, AdamState &state,
                 int64_t count, bool decay, double lr, int64_t step,
                 double scale, const OptimizerOptions &o) {
  if (state.expAvg.empty()) {
    state.expAvg.assign(count, 0.0f);
    state.expAvgSq.assign(count, 0.0f);
  }
  const double decayFactor = decay ? 1.0 - lr * o.weightDecay : 1.0;
  const double bias1 = 1.0 - std::pow(o.beta1, double(step));
  const double bias2Sqrt = std::sqrt(1.0 - std::pow(o.beta2, double(step)));
  const double stepSize = lr / bias1;
  float *m = state.expAvg.data(), *v = state.expAvgSq.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    double g = double(grad[i]) * scale;
    double mi = o.beta1 * m[i] + (1.0 - o.beta1) * g;
    double vi = o.beta2 * v[i] + (1.0 - o.beta2) * g * g;
    m[i] = float(mi);
    v[i] = float(vi);
    double p = double(master[i]) * decayFactor;
    master[i] = float(p - stepSize * mi / (std::sqrt(vi) / bias2Sqrt + o.eps));
  }
}

} // namespace moert::train
