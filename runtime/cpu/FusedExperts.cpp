//===- FusedExperts.cpp - a whole MoE block in one kernel -----------------===//
//
// Routes the batch from the router logits, then runs each expert over its
// tokens: the rows are gathered from the block input into a per-thread tile
// (rounded to bf16 on the way when the GEMMs are bf16), the gate and up GEMMs
// and the SwiGLU make the hidden tile, and the down GEMM's rows are added,
// weighted, into the tokens' outputs (ExpertRouting.h says how that stays
// deterministic when experts run side by side). No [tokens * k, D] value
// exists between the kernel's input and output.
//
// Where the launch's weights are constant they come repacked for the GEMM
// (PackedExperts.h), and the experts run as the tasks of
// PackedExpertsForward.cpp instead of one GEMM call per expert and weight;
// those add the down GEMM's rows into the output themselves.
//
// Experts that got only a few rows skip the GEMMs: their weights are
// streamed (ExpertStreaming.h) and their rows staged (unless the hidden
// states are kept for the backward pass: streaming makes none). The choice is made per
// expert from its row count alone, and whenever an expert is streamed all
// rows are staged, so a token's rows are still added in ascending expert
// order and the result does not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/ExpertPhases.h"
#include "runtime/cpu/ExpertStreaming.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Scratch.h"

#include <algorithm>

namespace moert::cpu {
namespace {
struct FusedScratch;
template <typename T, int Slot> T *scratch(size_t count) {
  return threadScratch<T, FusedScratch, Slot>(count);
}

struct Forward {
  const float *x;
  const ExpertRouting &routing;
  const MoeBlockWeights &block;
  bool bf16, widened;
  float *out;
  float *staging; // [tokens * k, D] by grouped row, when side by side
  KeptHidden kept;
  bool streams(int64_t rows) const {
    return !kept.gate && streamsExpert(block, rows);
  }
};

absl::Status expertForward(const Forward &p, int64_t e, int64_t firstRow,
                           Threads threads) {
  int64_t n = p.routing.counts[e], d = p.block.d, f = p.block.f;
  if (n == 0 || p.streams(n))
    return absl::OkStatus();
  const int32_t *slots = p.routing.slots.data() + firstRow;
  float *xF32 = p.bf16 ? nullptr : scratch<float, 0>(n * d);
  uint16_t *xBf16 = p.bf16 ? scratch<uint16_t, 0>(n * d) : nullptr;
  gatherRows(p.x, d, slots, n, p.routing.k, xF32, xBf16, threads);
  const void *x = p.bf16 ? static_cast<const void *>(xBf16) : xF32;

  ExpertSlices w = expertSlices(
      p.block.gate, p.block.up, p.block.down, e, f, d, p.widened,
      p.widened ? scratch<float, 1>(3 * f * d) : nullptr, threads);
  // Kept hidden states are the GEMMs' outputs themselves.
  bool keep = p.kept.gate != nullptr;
  float *gate = keep ? p.kept.gate + firstRow * f : scratch<float, 2>(n * f);
  float *up = keep ? p.kept.up + firstRow * f : scratch<float, 3>(n * f);
  if (auto s = gradMatmul(x, Layout::kAsIs, w.w1, Layout::kTransposed, gate, n,
                          d, f, p.bf16, false, threads);
      !s.ok())
    return s;
  if (auto s = gradMatmul(x, Layout::kAsIs, w.w3, Layout::kTransposed, up, n,
                          d, f, p.bf16, false, threads);
      !s.ok())
    return s;
  // The SwiGLU writes the down GEMM's input: over gate (unless kept), or
  // rounded to bf16.
  uint16_t *hiddenBf16 = p.bf16 ? scratch<uint16_t, 1>(n * f) : nullptr;
  float *hiddenF32 =
      p.bf16 ? nullptr : keep ? scratch<float, 2>(n * f) : gate;
  forBlocks(n * f, threads, [&](int64_t begin, int64_t end) {
    swigluForward(gate + begin, up + begin, end - begin,
                  hiddenF32 ? hiddenF32 + begin : nullptr,
                  hiddenBf16 ? hiddenBf16 + begin : nullptr);
  });
  const void *hidden =
      p.bf16 ? static_cast<const void *>(hiddenBf16) : hiddenF32;
  float *rows = p.staging ? p.staging + firstRow * d : scratch<float, 4>(n * d);
  if (auto s = gradMatmul(hidden, Layout::kAsIs, w.w2, Layout::kTransposed,
                          rows, n, f, d, p.bf16, false, threads);
      !s.ok())
    return s;
  if (p.staging)
    return absl::OkStatus();
  // One after the other: this expert's rows go straight into the output. A
  // token has at most one row per expert, so the rows never collide.
  auto add = [&](int64_t r) {
    addWeightedRow(p.routing, firstRow + r, rows + r * d, 0, d, d, p.out);
  };
  forEachRow(n, d, threads, add);
  return absl::OkStatus();
}
} // namespace

absl::Status expertsForward(const float *x, const ExpertRouting &routing,
                            const MoeBlockWeights &block, float *out,
                            float *staging, KeptHidden kept) {
  bool bf16 = block.gate.dtype == DType::kBF16 && bf16MatmulIsNative();
  Forward p{x,   routing, block,   bf16, block.gate.dtype != DType::kF32 && !bf16,
            out, nullptr, kept};
  bool streams = std::any_of(routing.counts.begin(), routing.counts.end(),
                             [&](int64_t rows) { return p.streams(rows); });
  // Packed weights are read only by the tasks of PackedExpertsForward.cpp;
  // kept hidden states take the per-expert GEMMs.
  if (block.packed && !kept.gate) {
    // The streamed experts' rows come first: the packed tasks add them in
    // expert order with the others.
    float *streamed = staging;
    if (streams && !streamed)
      streamed = scratch<float, 5>(routing.tokens * routing.k * block.d);
    if (streams)
      streamExperts(x, routing, block, bf16, streamed);
    return packedExpertsForward(x, routing, block,
                                staging ? ExpertOutputs{nullptr, staging}
                                        : ExpertOutputs{out, streamed});
  }
  bool ownStaging =
      !staging &&
      (streams || expertsSideBySide(routing.counts.data(), routing.experts));
  if (ownStaging)
    staging = scratch<float, 5>(routing.tokens * routing.k * block.d);
  if (!staging)
    std::fill(out, out + routing.tokens * block.d, 0.0f);
  p.staging = staging;
  if (auto s = forEachExpert(routing.counts.data(), routing.experts,
                             [&](int64_t e, int64_t firstRow, Threads threads) {
                               return expertForward(p, e, firstRow, threads);
                             });
      !s.ok())
    return s;
  if (streams)
    streamExperts(x, routing, block, bf16, staging);
  if (ownStaging)
    sumStagedRows(routing, staging, block.d, /*weighted=*/true, out);
  return absl::OkStatus();
}

absl::Status fusedExperts(const float *x, int64_t tokens,
                          const MoeBlockWeights &block, int64_t k,
                          bool normalize, float *out, float *logits,
                          comm::Communicator *expertGroup,
                          int64_t exchangeChunks, UnlabelledTail skipped,
                          KeptHidden kept) {
  if (auto s = linear(x, tokens, block.d, block.router, block.experts, logits);
      !s.ok())
    return s;
  ExpertRouting routing;
  if (auto s = routeTokens(logits, tokens, block.experts, k, normalize,
                           routing, skipped);
      !s.ok())
    return s;
  if (expertGroup && expertGroup->size() > 1)
    return kept.gate ? absl::InvalidArgumentError(
                           "a fused block split over ranks keeps no hidden "
                           "states")
                     : exchangeExpertsForward(x, routing, block, *expertGroup,
                                              exchangeChunks, out);
  return expertsForward(x, routing, block, out, /*staging=*/nullptr, kept);
}

} // namespace moert::cpu
