//===- Loss.cpp - cross-entropy and the MoE load-balancing loss -----------===//
//
// Forward only. Per-row terms are summed in a fixed order in double, so the
// losses do not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/GradMath.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/LossParts.h"
#include "runtime/cpu/RoutingMath.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moert::cpu {

namespace {
/// log(sum(exp(row - best))) + best: exp in fp32 (GradMath.h's vectorised
/// one, 1e-7 relative), summed in double lanes.
MOERT_ISA_CLONES
double logSumExp(const float *row, int64_t n) {
  float best = -std::numeric_limits<float>::infinity();
  for (int64_t v = 0; v < n; ++v)
    best = std::max(best, row[v]);
  constexpr int64_t kLanes = 8;
  double lanes[kLanes] = {};
  int64_t v = 0;
  for (; v + kLanes <= n; v += kLanes)
    for (int64_t l = 0; l < kLanes; ++l)
      lanes[l] += vectorExp(row[v + l] - best);
  for (; v < n; ++v)
    lanes[0] += vectorExp(row[v] - best);
  double total = 0;
  for (double lane : lanes)
    total += lane;
  return best + std::log(total);
}
} // namespace

absl::Status crossEntropy(const float *logits, const int32_t *labels,
                          int64_t rows, int64_t vocab, int64_t ignoreIndex,
                          float *loss, comm::Communicator *ranks) {
  absl::StatusOr<int64_t> predicted =
      countPredicted(labels, rows, vocab, ignoreIndex);
  if (!predicted.ok())
    return predicted.status();
  std::vector<double> perRow(rows, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[r] == ignoreIndex)
      continue;
    const float *row = logits + r * vocab;
    perRow[r] = logSumExp(row, vocab) - row[labels[r]];
  }
  double total[2] = {0.0, double(*predicted)}; // sum, count
  for (double value : perRow)
    total[0] += value;
  if (auto s = sumOverRanks(ranks, total, 2); !s.ok())
    return s;
  *loss = total[1] > 0 ? float(total[0] / total[1]) : 0.0f;
  return absl::OkStatus();
}

absl::Status loadBalancingLoss(const std::vector<const float *> &logits,
                               const std::vector<int64_t> &tokens,
                               int64_t experts, int64_t k, float *loss,
                               TokenMask mask, comm::Communicator *ranks) {
  double total = 0;
  std::vector<double> assignments =
      topKAssignments(logits, tokens, experts, k, mask, total);
  std::vector<double> probability(experts, 0.0), probs(experts);
  for (size_t layer = 0; layer < logits.size(); ++layer) {
    for (int64_t t = 0; t < tokens[layer]; ++t) {
      if (!mask.counts(t))
        continue;
      softmax(logits[layer] + t * experts, experts, probs.data());
      for (int64_t e = 0; e < experts; ++e)
        probability[e] += probs[e];
    }
  }
  // The statistics of the global batch: [assignments, probability, total].
  std::vector<double> sums = assignments;
  sums.insert(sums.end(), probability.begin(), probability.end());
  sums.push_back(total);
  if (auto s = sumOverRanks(ranks, sums.data(), int64_t(sums.size())); !s.ok())
    return s;
  total = sums.back();
  double value = 0;
  for (int64_t e = 0; e < experts; ++e)
    value += (sums[e] / total) * (sums[experts + e] / total);
  *loss = total > 0 ? float(experts * value) : 0.0f;
  return absl::OkStatus();
}

} // namespace moert::cpu
