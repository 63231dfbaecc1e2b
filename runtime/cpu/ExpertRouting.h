//===- ExpertRouting.h - one batch's routing, for the fused block -*- C++ -*-===//
//
// Internal to the fused MoE kernels. The routing of a batch is what both
// passes of a fused block derive from its router logits: each token's top-k
// experts and weights, and the token copies ("slots", token * k + j) grouped
// by expert, in ascending expert and then slot order, exactly as dispatch
// lays out its rows. The backward pass recomputes it from the same logits
// and so gets the same routing as the forward pass. Tokens that skip the
// experts (UnlabelledTail) keep their top-k choice and weights, but their
// slots are in no expert's rows.
//
// Rows of experts that run side by side cannot be added into a token's
// output as they come (two experts of one token would race), so they land
// in a staging buffer by grouped row and are summed afterwards; experts run
// one after the other add theirs straight in. Both add a token's rows in
// ascending expert order with the same function, so the two give the same
// bits, and the choice (made from the thread count) changes nothing.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_EXPERTROUTING_H
#define MOERT_CPU_EXPERTROUTING_H

#include "runtime/cpu/GradMatmul.h"

#include "absl/status/status.h"

#include <cstdint>
#include <vector>

namespace moert::cpu {

struct ExpertRouting {
  int64_t tokens = 0, k = 0, experts = 0;
  std::vector<float> weights;    // [tokens * k], by slot
  std::vector<int32_t> indices;  // [tokens * k], by slot
  std::vector<int64_t> counts;   // [experts]: rows of each expert
  std::vector<int64_t> first;    // [experts]: its first grouped row
  std::vector<int32_t> slots;    // [grouped rows]: the slot of each
  std::vector<int64_t> rowOfSlot; // [tokens * k]: the inverse, or -1
};

/// Routes `tokens` rows of router logits [tokens, experts] (routerTopK, then
/// the grouping of dispatch), leaving the slots of `skipped` tokens out of
/// the grouping.
absl::Status routeTokens(const float *logits, int64_t tokens, int64_t experts,
                         int64_t k, bool normalize, ExpertRouting &routing,
                         UnlabelledTail skipped = {});

/// dispatch's grouping: counts [experts] and the slot of each grouped row,
/// by expert then slot, leaving out the slots of tokens (slot / k) marked
/// in `skipped` when given; an error names an index outside [0, experts).
absl::Status groupByExpert(const int32_t *indices, int64_t slots,
                           int64_t experts, int64_t *counts,
                           int32_t *sourceSlots,
                           const uint8_t *skipped = nullptr, int64_t k = 1);

/// Runs body(r) for every row r in [0, rows) of `width` elements: on the
/// calling thread (kCaller, or when the rows hold little work), else shared
/// among all threads. Rows must be independent.
template <typename Body>
void forEachRow(int64_t rows, int64_t width, Threads threads,
                const Body &body) {
  if (threads == Threads::kCaller || rows * width <= 4096) {
    for (int64_t r = 0; r < rows; ++r)
      body(r);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    body(r);
}

/// acc[i] += w * y[i]: every addition of a row into a token's output.
void addScaledRow(float *acc, float w, const float *y, int64_t n);

/// Adds grouped row `row`'s output `values` (columns [column, column + w)),
/// scaled by its routing weight, into its token's row of out [*, d].
void addWeightedRow(const ExpertRouting &routing, int64_t row,
                    const float *values, int64_t column, int64_t w, int64_t d,
                    float *out);

/// Copies rows `slots[r] / k` of src [*, d] into dst [n, d], as fp32
/// (dstF32) or rounded to bf16 (dstBf16), on the given threads.
void gatherRows(const float *src, int64_t d, const int32_t *slots, int64_t n,
                int64_t k, float *dstF32, uint16_t *dstBf16, Threads threads);

/// out[t] (zeroed first) = sum over t's grouped slots, in ascending expert
/// order, of scale(slot) * staging[row of slot], where scale is the routing
/// weight (weighted) or 1.
void sumStagedRows(const ExpertRouting &routing, const float *staging,
                   int64_t d, bool weighted, float *out);

} // namespace moert::cpu

#endif // MOERT_CPU_EXPERTROUTING_H
