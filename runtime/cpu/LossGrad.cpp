//===- LossGrad.cpp - backward of the losses; the router z-loss -----------===//
//
// Per-row work only, except the sums that define the losses, which run in
// a fixed order in double (as in Loss.cpp).
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/LossParts.h"
#include "runtime/cpu/RoutingMath.h"
#include "runtime/cpu/GradMath.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>

namespace moert::cpu {
namespace {
/// Eight double lanes, so the sum vectorises yet stays in double.
double sumInDouble(const float *values, int64_t n) {
  double lanes[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int lane = 0; lane < 8; ++lane)
      lanes[lane] += values[i + lane];
  for (; i < n; ++i)
    lanes[0] += values[i];
  double total = 0;
  for (double lane : lanes)
    total += lane;
  return total;
}
/// Zero router-logit gradients for every layer: when no token counts.
void zeroGrads(const std::vector<int64_t> &tokens, int64_t experts,
               const std::vector<float *> &dlogits) {
  for (size_t layer = 0; layer < dlogits.size(); ++layer)
    std::fill(dlogits[layer], dlogits[layer] + tokens[layer] * experts, 0.0f);
}
} // namespace

absl::Status crossEntropyGrad(const float *logits, const int32_t *labels,
                              int64_t rows, int64_t vocab,
                              int64_t ignoreIndex, float dloss,
                              float *dlogits, comm::Communicator *ranks) {
  absl::StatusOr<int64_t> predicted =
      countPredicted(labels, rows, vocab, ignoreIndex);
  if (!predicted.ok())
    return predicted.status();
  double counted = double(*predicted);
  if (auto s = sumOverRanks(ranks, &counted, 1); !s.ok())
    return s;
  float perRow = counted > 0 ? dloss / float(counted) : 0.0f;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *row = logits + r * vocab;
    float *out = dlogits + r * vocab;
    if (labels[r] == ignoreIndex) {
      std::fill(out, out + vocab, 0.0f);
      continue;
    }
    // Vectorised max and fp32 exponentials, summed in double.
    float best = row[0];
#pragma omp simd reduction(max : best)
    for (int64_t v = 0; v < vocab; ++v)
      best = std::max(best, row[v]);
    for (int64_t v = 0; v < vocab; ++v)
      out[v] = vectorExp(row[v] - best);
    float factor = float(perRow / sumInDouble(out, vocab));
#pragma omp simd
    for (int64_t v = 0; v < vocab; ++v)
      out[v] *= factor;
    out[labels[r]] -= perRow;
  }
  return absl::OkStatus();
}

absl::Status loadBalancingLossGrad(const std::vector<const float *> &logits,
                                   const std::vector<int64_t> &tokens,
                                   int64_t experts, int64_t k, float dloss,
                                   const std::vector<float *> &dlogits,
                                   TokenMask mask, comm::Communicator *ranks) {
  // L = E * sum_e f_e P_e with P_e = sum_t p_te / T, so dL/dp_te =
  // E f_e / T, then through each token's softmax. f and T are the global
  // batch's.
  double total = 0;
  std::vector<double> assignments =
      topKAssignments(logits, tokens, experts, k, mask, total);
  assignments.push_back(total);
  if (auto s = sumOverRanks(ranks, assignments.data(), experts + 1); !s.ok())
    return s;
  total = assignments.back();
  if (total == 0) {
    zeroGrads(tokens, experts, dlogits);
    return absl::OkStatus();
  }
  std::vector<double> dprobs(experts);
  for (int64_t e = 0; e < experts; ++e)
    dprobs[e] = double(dloss) * experts * (assignments[e] / total) / total;
  for (size_t layer = 0; layer < logits.size(); ++layer) {
#pragma omp parallel
    {
      std::vector<double> probs(experts);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tokens[layer]; ++t) {
        float *out = dlogits[layer] + t * experts;
        if (!mask.counts(t)) {
          std::fill(out, out + experts, 0.0f);
          continue;
        }
        softmax(logits[layer] + t * experts, experts, probs.data());
        double projection = 0;
        for (int64_t e = 0; e < experts; ++e)
          projection += probs[e] * dprobs[e];
        for (int64_t e = 0; e < experts; ++e)
          out[e] = float(probs[e] * (dprobs[e] - projection));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status routerZLoss(const std::vector<const float *> &logits,
                         const std::vector<int64_t> &tokens, int64_t experts,
                         float *loss, TokenMask mask,
                         comm::Communicator *ranks) {
  double sum = 0, total = 0;
  for (size_t layer = 0; layer < logits.size(); ++layer) {
    std::vector<double> perToken(tokens[layer]);
#pragma omp parallel
    {
      std::vector<double> probs(experts);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tokens[layer]; ++t) {
        double lse = softmax(logits[layer] + t * experts, experts, probs.data());
        perToken[t] = mask.counts(t) ? lse * lse : 0.0;
      }
    }
    for (int64_t t = 0; t < tokens[layer]; ++t) {
      sum += perToken[t];
      total += mask.counts(t);
    }
  }
  double sums[2] = {sum, total};
  if (auto s = sumOverRanks(ranks, sums, 2); !s.ok())
    return s;
  *loss = sums[1] > 0 ? float(sums[0] / sums[1]) : 0.0f;
  return absl::OkStatus();
}

absl::Status routerZLossGrad(const std::vector<const float *> &logits,
                             const std::vector<int64_t> &tokens,
                             int64_t experts, float dloss,
                             const std::vector<float *> &dlogits,
                             TokenMask mask, comm::Communicator *ranks) {
  // d lse^2 / d logit_e = 2 lse p_e.
  double total = 0;
  for (int64_t n : tokens)
    for (int64_t t = 0; t < n; ++t)
      total += mask.counts(t);
  if (auto s = sumOverRanks(ranks, &total, 1); !s.ok())
    return s;
  if (total == 0) {
    zeroGrads(tokens, experts, dlogits);
    return absl::OkStatus();
  }
  double perToken = 2.0 * dloss / total;
  for (size_t layer = 0; layer < logits.size(); ++layer) {
#pragma omp parallel
    {
      std::vector<double> probs(experts);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tokens[layer]; ++t) {
        float *out = dlogits[layer] + t * experts;
        if (!mask.counts(t)) {
          std::fill(out, out + experts, 0.0f);
          continue;
        }
        double lse = softmax(logits[layer] + t * experts, experts, probs.data());
        for (int64_t e = 0; e < experts; ++e)
          out[e] = float(perToken * lse * probs[e]);
      }
    }
  }
  return absl::OkStatus();
}

} // namespace moert::cpu
