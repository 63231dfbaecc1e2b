//===- ExpertRouting.cpp - one batch's routing, for the fused block -------===//

#include "runtime/cpu/ExpertRouting.h"

#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cstring>

namespace moert::cpu {

absl::Status groupByExpert(const int32_t *indices, int64_t slots,
                           int64_t experts, int64_t *counts,
                           int32_t *sourceSlots, const uint8_t *skipped,
                           int64_t k) {
  auto grouped = [&](int64_t s) { return !skipped || !skipped[s / k]; };
  std::fill(counts, counts + experts, 0);
  for (int64_t s = 0; s < slots; ++s) {
    if (indices[s] < 0 || indices[s] >= experts)
      return absl::InvalidArgumentError(
          absl::StrCat("expert index ", indices[s], " of slot ", s,
                       " is outside [0, ", experts, ")"));
    counts[indices[s]] += grouped(s);
  }
  std::vector<int64_t> next(experts, 0);
  for (int64_t e = 1; e < experts; ++e)
    next[e] = next[e - 1] + counts[e - 1];
  for (int64_t s = 0; s < slots; ++s)
    if (grouped(s))
      sourceSlots[next[indices[s]]++] = int32_t(s);
  return absl::OkStatus();
}

namespace {
/// Whether each token skips the experts: the tokens after the last counted
/// label of their row (none, and nothing allocated, without labels).
std::vector<uint8_t> skippedTokens(int64_t tokens, UnlabelledTail tail) {
  if (!tail.labels)
    return {};
  std::vector<uint8_t> skipped(tokens, 0);
  for (int64_t row = 0; row < tokens; row += tail.seq)
    for (int64_t t = std::min(tokens, row + tail.seq) - 1;
         t >= row && tail.labels[t] == tail.ignoreIndex; --t)
      skipped[t] = 1;
  return skipped;
}
} // namespace

absl::Status routeTokens(const float *logits, int64_t tokens, int64_t experts,
                         int64_t k, bool normalize, ExpertRouting &routing,
                         UnlabelledTail skipped) {
  int64_t slots = tokens * k;
  routing.tokens = tokens;
  routing.k = k;
  routing.experts = experts;
  routing.weights.resize(slots);
  routing.indices.resize(slots);
  routing.counts.resize(experts);
  routing.first.assign(experts, 0);
  routing.slots.resize(slots);
  routing.rowOfSlot.assign(slots, -1);
  routerTopK(logits, tokens, experts, k, normalize, routing.weights.data(),
             routing.indices.data());
  std::vector<uint8_t> skips = skippedTokens(tokens, skipped);
  if (auto status = groupByExpert(routing.indices.data(), slots, experts,
                                  routing.counts.data(), routing.slots.data(),
                                  skips.empty() ? nullptr : skips.data(), k);
      !status.ok())
    return status;
  for (int64_t e = 1; e < experts; ++e)
    routing.first[e] = routing.first[e - 1] + routing.counts[e - 1];
  routing.slots.resize(routing.first.back() + routing.counts.back());
  for (size_t r = 0; r < routing.slots.size(); ++r)
    routing.rowOfSlot[routing.slots[r]] = int64_t(r);
  return absl::OkStatus();
}

MOERT_ISA_CLONES
void addScaledRow(float *acc, float w, const float *y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    acc[i] += w * y[i];
}

void addWeightedRow(const ExpertRouting &routing, int64_t row,
                    const float *values, int64_t column, int64_t w, int64_t d,
                    float *out) {
  int32_t slot = routing.slots[row];
  addScaledRow(out + slot / routing.k * d + column, routing.weights[slot],
               values, w);
}

void gatherRows(const float *src, int64_t d, const int32_t *slots, int64_t n,
                int64_t k, float *dstF32, uint16_t *dstBf16, Threads threads) {
  auto copy = [&](int64_t r) {
    const float *row = src + (slots[r] / k) * d;
    if (dstBf16)
      roundRangeToBf16(row, 0, d, dstBf16 + r * d);
    else
      std::memcpy(dstF32 + r * d, row, d * sizeof(float));
  };
  forEachRow(n, d, threads, copy);
}

void sumStagedRows(const ExpertRouting &routing, const float *staging,
                   int64_t d, bool weighted, float *out) {
  int64_t k = routing.k;
#pragma omp parallel
  {
    std::vector<int64_t> rows(k);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < routing.tokens; ++t) {
      // Grouped rows ascend with the expert.
      for (int64_t j = 0; j < k; ++j)
        rows[j] = routing.rowOfSlot[t * k + j];
      std::sort(rows.begin(), rows.end());
      float *acc = out + t * d;
      std::fill(acc, acc + d, 0.0f);
      for (int64_t row : rows) {
        if (row < 0) // a skipped token's slot
          continue;
        float w = weighted ? routing.weights[routing.slots[row]] : 1.0f;
        addScaledRow(acc, w, staging + row * d, d);
      }
    }
  }
}

} // namespace moert::cpu
