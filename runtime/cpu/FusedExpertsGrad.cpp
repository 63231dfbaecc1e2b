//===- FusedExpertsGrad.cpp - backward of the fused MoE block -------------===//
//
// From the block input and the router logits alone: the routing is
// recomputed from the logits (the same function as the forward pass, so the
// same choice), and per expert the hidden activations h1 = x w1^T and
// h3 = x w3^T from its gathered rows (or read where the forward pass kept
// them, KeptHidden). With g = dout w2 per row (the output
// gradient of the row's token, unweighted), one loop gives the SwiGLU
// backward scaled by the routing weight w, the routing weight's gradient
// <g, act> and w * act, which the down weight's gradient reads against the
// gathered output gradients: dW2 = dout^T (w act). So the combine's backward
// costs no GEMM of its own. The rows' input gradients are added into dx as
// the forward adds its rows into the output (ExpertRouting.h); then the
// router's backward adds its part.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/ExpertPhases.h"
#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMath.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Scratch.h"

#include <algorithm>

namespace moert::cpu {
namespace {
struct FusedGradScratch;
template <typename T, int Slot> T *scratch(size_t count) {
  return threadScratch<T, FusedGradScratch, Slot>(count);
}

MOERT_ISA_INLINE float stored(float v, float) { return v; }
MOERT_ISA_INLINE uint16_t stored(float v, uint16_t) { return floatToBf16(v); }

/// The loop of weightedSwigluGrad, writing its outputs as Out (fp32, or
/// rounded to bf16).
template <typename Out>
MOERT_ISA_INLINE float weightedSwigluGradAs(const float *gate, const float *up,
                                            const float *g, float w, int64_t n,
                                            Out *actW, Out *dgate, Out *dup) {
  float dweight = 0.0f;
#pragma omp simd reduction(+ : dweight)
  for (int64_t i = 0; i < n; ++i) {
    float h = gate[i], u = up[i], gi = g[i];
    float sigmoid = 1.0f / (1.0f + vectorExp(-h));
    float silu = h * sigmoid, act = silu * u, dh = w * gi;
    dweight += gi * act;
    actW[i] = stored(w * act, Out());
    dgate[i] = stored(dh * u * sigmoid * (1.0f + h * (1.0f - sigmoid)), Out());
    dup[i] = stored(dh * silu, Out());
  }
  return dweight;
}

/// One row of the weighted SwiGLU backward: from h1 (gate), h3 (up) and
/// g = d(act) / w, writes w * act and the gradients of h1 and h3 (fp32, or
/// bf16 when the F32 outputs are null) and returns <g, act>, the routing
/// weight's gradient.
MOERT_ISA_CLONES
float weightedSwigluGrad(const float *gate, const float *up, const float *g,
                         float w, int64_t n, float *actW, float *dgate,
                         float *dup, uint16_t *actWBf16, uint16_t *dgateBf16,
                         uint16_t *dupBf16) {
  return actW ? weightedSwigluGradAs(gate, up, g, w, n, actW, dgate, dup)
              : weightedSwigluGradAs(gate, up, g, w, n, actWBf16, dgateBf16,
                                     dupBf16);
}

struct Backward {
  const float *x, *dout;
  const ExpertRouting &routing;
  const MoeBlockWeights &block;
  bool bf16, widened;
  float *dx, *staging; // staging: [tokens * k, D] by grouped row, side by side
  float *dweights;     // [tokens * k], by slot
  float *dgate, *dup, *ddown;
  KeptHidden saved;
};

absl::Status expertBackward(const Backward &p, int64_t e, int64_t firstRow,
                            Threads threads) {
  int64_t n = p.routing.counts[e], d = p.block.d, f = p.block.f, k = p.routing.k;
  int64_t slice = e * f * d;
  if (n == 0) {
    for (float *grad : {p.dgate, p.dup, p.ddown})
      std::fill(grad + slice, grad + slice + f * d, 0.0f);
    return absl::OkStatus();
  }
  const int32_t *slots = p.routing.slots.data() + firstRow;
  bool bf16 = p.bf16;
  // The expert's rows of x and of the output gradient, as the GEMMs read
  // them.
  float *xF32 = bf16 ? nullptr : scratch<float, 0>(n * d);
  float *dyF32 = bf16 ? nullptr : scratch<float, 1>(n * d);
  uint16_t *xBf16 = bf16 ? scratch<uint16_t, 0>(n * d) : nullptr;
  uint16_t *dyBf16 = bf16 ? scratch<uint16_t, 1>(n * d) : nullptr;
  gatherRows(p.x, d, slots, n, k, xF32, xBf16, threads);
  gatherRows(p.dout, d, slots, n, k, dyF32, dyBf16, threads);
  const void *x = bf16 ? static_cast<const void *>(xBf16) : xF32;
  const void *dy = bf16 ? static_cast<const void *>(dyBf16) : dyF32;

  ExpertSlices w = expertSlices(
      p.block.gate, p.block.up, p.block.down, e, f, d, p.widened,
      p.widened ? scratch<float, 2>(3 * f * d) : nullptr, threads);
  // The hidden states: kept by the forward pass, or computed again.
  float *h1 = p.saved.gate ? p.saved.gate + firstRow * f
                           : scratch<float, 3>(n * f);
  float *h3 = p.saved.up ? p.saved.up + firstRow * f : scratch<float, 4>(n * f);
  float *g = scratch<float, 5>(n * f);
  if (!p.saved.gate) {
    if (auto s = gradMatmul(x, Layout::kAsIs, w.w1, Layout::kTransposed, h1,
                            n, d, f, bf16, false, threads);
        !s.ok())
      return s;
    if (auto s = gradMatmul(x, Layout::kAsIs, w.w3, Layout::kTransposed, h3,
                            n, d, f, bf16, false, threads);
        !s.ok())
      return s;
  }
  if (auto s = gradMatmul(dy, Layout::kAsIs, w.w2, Layout::kAsIs, g, n, d, f,
                          bf16, false, threads);
      !s.ok())
    return s;

  // w * act, dh1, dh3: fp32, or only their bf16 roundings.
  float *outF32 = bf16 ? nullptr : scratch<float, 6>(3 * n * f);
  uint16_t *outBf16 = bf16 ? scratch<uint16_t, 2>(3 * n * f) : nullptr;
  auto part = [&](int64_t i) -> const void * {
    return bf16 ? static_cast<const void *>(outBf16 + i * n * f)
                : outF32 + i * n * f;
  };
  auto row = [&](int64_t r) {
    int32_t slot = slots[r];
    int64_t at = r * f;
    p.dweights[slot] = weightedSwigluGrad(
        h1 + at, h3 + at, g + at, p.routing.weights[slot], f,
        bf16 ? nullptr : outF32 + at, bf16 ? nullptr : outF32 + n * f + at,
        bf16 ? nullptr : outF32 + 2 * n * f + at, bf16 ? outBf16 + at : nullptr,
        bf16 ? outBf16 + n * f + at : nullptr,
        bf16 ? outBf16 + 2 * n * f + at : nullptr);
  };
  forEachRow(n, f, threads, row);

  // dW2 [D, F] = dout^T (w act); dW1, dW3 [F, D] = dh^T x.
  if (auto s = gradMatmul(dy, Layout::kTransposed, part(0), Layout::kAsIs,
                          p.ddown + slice, d, n, f, bf16, false, threads);
      !s.ok())
    return s;
  if (auto s = gradMatmul(part(1), Layout::kTransposed, x, Layout::kAsIs,
                          p.dgate + slice, f, n, d, bf16, false, threads);
      !s.ok())
    return s;
  if (auto s = gradMatmul(part(2), Layout::kTransposed, x, Layout::kAsIs,
                          p.dup + slice, f, n, d, bf16, false, threads);
      !s.ok())
    return s;
  // The rows' input gradients, dh1 w1 + dh3 w3 [n, D].
  float *rows = p.staging ? p.staging + firstRow * d : scratch<float, 7>(n * d);
  if (auto s = gradMatmul(part(1), Layout::kAsIs, w.w1, Layout::kAsIs, rows, n,
                          f, d, bf16, false, threads);
      !s.ok())
    return s;
  if (auto s = gradMatmul(part(2), Layout::kAsIs, w.w3, Layout::kAsIs, rows, n,
                          f, d, bf16, /*accumulate=*/true, threads);
      !s.ok())
    return s;
  if (p.staging)
    return absl::OkStatus();
  auto add = [&](int64_t r) {
    addScaledRow(p.dx + (slots[r] / k) * d, 1.0f, rows + r * d, d);
  };
  forEachRow(n, d, threads, add);
  return absl::OkStatus();
}
} // namespace

absl::Status expertsBackward(const float *x, const float *dout,
                             const ExpertRouting &routing,
                             const MoeBlockWeights &block, float *dx,
                             float *staging, float *dweights, float *dgate,
                             float *dup, float *ddown, KeptHidden saved) {
  int64_t d = block.d;
  bool bf16 = block.gate.dtype == DType::kBF16 && bf16MatmulIsNative();
  bool ownStaging =
      !staging && expertsSideBySide(routing.counts.data(), routing.experts);
  if (ownStaging)
    staging = scratch<float, 8>(routing.tokens * routing.k * d);
  if (!staging)
    std::fill(dx, dx + routing.tokens * d, 0.0f);
  Backward p{x,       dout,    routing,  block,
             bf16,    block.gate.dtype != DType::kF32 && !bf16,
             dx,      staging, dweights, dgate,
             dup,     ddown,   saved};
  if (auto s = forEachExpert(routing.counts.data(), routing.experts,
                             [&](int64_t e, int64_t firstRow, Threads threads) {
                               return expertBackward(p, e, firstRow, threads);
                             });
      !s.ok())
    return s;
  if (ownStaging)
    sumStagedRows(routing, staging, d, /*weighted=*/false, dx);
  return absl::OkStatus();
}

absl::Status fusedExpertsGrad(const float *x, int64_t tokens,
                              const MoeBlockWeights &block, int64_t k,
                              bool normalize, const float *logits,
                              const float *dout, const float *dlogitsExtra,
                              float *dx, float *drouter, float *dgate,
                              float *dup, float *ddown,
                              comm::Communicator *expertGroup,
                              int64_t exchangeChunks, UnlabelledTail skipped,
                              KeptHidden saved) {
  int64_t experts = block.experts, d = block.d;
  ExpertRouting routing;
  if (auto s = routeTokens(logits, tokens, experts, k, normalize, routing,
                           skipped);
      !s.ok())
    return s;
  std::vector<float> dweights(tokens * k);
  bool split = expertGroup && expertGroup->size() > 1;
  if (split && saved.gate)
    return absl::InvalidArgumentError(
        "a fused block split over ranks keeps no hidden states");
  absl::Status experted =
      split ? exchangeExpertsBackward(x, dout, routing, block, *expertGroup,
                                      exchangeChunks, dx, dweights.data(),
                                      dgate, dup, ddown)
            : expertsBackward(x, dout, routing, block, dx, /*staging=*/nullptr,
                              dweights.data(), dgate, dup, ddown, saved);
  if (!experted.ok())
    return experted;

  // The router: its logits' gradient, then its linear layer's.
  float *dlogits = scratch<float, 9>(tokens * experts);
  routerGrad(logits, routing.indices.data(), dweights.data(), dlogitsExtra,
             tokens, experts, k, normalize, dlogits);
  float *dxRouter = scratch<float, 10>(tokens * d);
  if (auto s = linearGradInput(dlogits, tokens, experts, block.router, d,
                               dxRouter);
      !s.ok())
    return s;
  add(dx, dxRouter, tokens * d, dx);
  bool routerBf16 =
      block.router.dtype == DType::kBF16 && bf16MatmulIsNative();
  return linearGradWeight(dlogits, x, tokens, experts, d, drouter, routerBf16);
}

} // namespace moert::cpu
