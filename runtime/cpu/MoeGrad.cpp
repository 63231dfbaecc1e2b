//===- MoeGrad.cpp - backward of routing, dispatch and combine ------------===//
//
// Every token's gradient is computed by one thread from that token's slots
// alone, in slot order, so no sum depends on the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/RoutingMath.h"
#include "runtime/cpu/RowSums.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moert::cpu {
void routerGrad(const float *logits, const int32_t *indices,
                const float *dweights, const float *dlogitsExtra,
                int64_t tokens, int64_t experts, int64_t k, bool normalize,
                float *dlogits) {
#pragma omp parallel
  {
    std::vector<double> probs(experts), dprobs(experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      softmax(logits + t * experts, experts, probs.data());
      const int32_t *chosen = indices + t * k;
      const float *dw = dweights + t * k;
      std::fill(dprobs.begin(), dprobs.end(), 0.0);
      if (normalize) {
        // w_j = p_j / c with c = sum of the chosen p, so
        // dp_j = (dw_j - sum_i dw_i w_i) / c.
        double chosenTotal = 0, weighted = 0;
        for (int64_t j = 0; j < k; ++j)
          chosenTotal += probs[chosen[j]];
        for (int64_t j = 0; j < k; ++j)
          weighted += dw[j] * (probs[chosen[j]] / chosenTotal);
        for (int64_t j = 0; j < k; ++j)
          dprobs[chosen[j]] = (dw[j] - weighted) / chosenTotal;
      } else {
        for (int64_t j = 0; j < k; ++j)
          dprobs[chosen[j]] = dw[j];
      }
      // Softmax: dlogit_e = p_e (dp_e - <p, dp>).
      double projection = 0;
      for (int64_t e = 0; e < experts; ++e)
        projection += probs[e] * dprobs[e];
      float *out = dlogits + t * experts;
      for (int64_t e = 0; e < experts; ++e)
        out[e] = float(probs[e] * (dprobs[e] - projection));
      if (dlogitsExtra)
        for (int64_t e = 0; e < experts; ++e)
          out[e] += dlogitsExtra[t * experts + e];
    }
  }
}

absl::Status dispatchGrad(const float *dgrouped, const int32_t *sourceSlots,
                          int64_t tokens, int64_t k, int64_t d, float *dx) {
  // The transpose of a gather of rows: each token's rows summed, weight 1.
  return combine(dgrouped, nullptr, sourceSlots, tokens, k, d, dx);
}

namespace {
/// Token t's slots: dy rows = weight * dout row, dweight = <dout row, y row>.
MOERT_ISA_CLONES
void combineGradToken(const float *y, const float *weights,
                      const int64_t *rowOfSlot, int64_t t, int64_t k, int64_t d,
                      const float *dout, float *dy, float *dweights) {
  const float *grad = dout + t * d;
  for (int64_t j = 0; j < k; ++j) {
    int64_t row = rowOfSlot[t * k + j];
    float *target = dy + row * d;
    float w = weights[t * k + j];
#pragma omp simd
    for (int64_t i = 0; i < d; ++i)
      target[i] = w * grad[i];
    dweights[t * k + j] = float(rowDot(grad, y + row * d, d));
  }
}
} // namespace

absl::Status combineGrad(const float *y, const float *weights,
                         const int32_t *sourceSlots, int64_t tokens, int64_t k,
                         int64_t d, const float *dout, float *dy,
                         float *dweights) {
  std::vector<int64_t> rowOfSlot;
  if (auto s = invertSlots(sourceSlots, tokens * k, rowOfSlot); !s.ok())
    return s;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t)
    combineGradToken(y, weights, rowOfSlot.data(), t, k, d, dout, dy, dweights);
  return absl::OkStatus();
}

} // namespace moert::cpu
