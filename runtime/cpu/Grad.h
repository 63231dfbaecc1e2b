//===- Grad.h - the CPU backend's backward kernels --------------*- C++ -*-===//
//
// Vector-Jacobian products of the forward kernels in Kernels.h, one per op,
// as the training program of moe-autodiff calls them. Gradients are fp32;
// weights may be fp32, bf16 or f16 compute copies (a Weight says which).
// Every kernel overwrites its outputs (accumulating across uses and
// micro-batches is the caller's business) and, like the forward kernels,
// gives the same result for any thread count.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_GRAD_H
#define MOERT_CPU_GRAD_H

#include "runtime/cpu/Kernels.h"

namespace moert::cpu {

/// y = x w^T: dx[M, K] = dy[M, N] w[N, K].
absl::Status linearGradInput(const float *dy, int64_t m, int64_t n, Weight w,
                             int64_t k, float *dx);

/// y = x w^T: dw[N, K] = dy[M, N]^T x[M, K], in fp32, or (`bf16`, where bf16
/// GEMMs are native) as a bf16 GEMM of dy and x rounded, accumulating in fp32.
absl::Status linearGradWeight(const float *dy, const float *x, int64_t m,
                              int64_t n, int64_t k, float *dw,
                              bool bf16 = false);

/// linearGradWeight as a bf16 GEMM (needs native bf16 GEMMs) for an x stored
/// as bf16, read as it is.
absl::Status linearGradWeightBf16(const float *dy, const uint16_t *x, int64_t m,
                                  int64_t n, int64_t k, float *dw);

/// rmsNorm backward: dx [rows, d] and dw [d] (dw summed over rows in a
/// fixed order).
void rmsNormGrad(const float *x, Weight w, const float *dy, int64_t rows,
                 int64_t d, double eps, float *dx, float *dw);

/// rope backward: the inverse rotation (angle negated) of dy, in place.
void ropeGrad(float *dy, int64_t batch, int64_t seq, int64_t heads,
              int64_t headDim, double theta, const void *positions,
              DType positionsType);

/// attention backward, recomputing the softmax from q and k (no
/// probabilities are stored by the forward pass). dk and dv sum over the
/// query heads that share a KV head. `bf16` as for attention().
void attentionGrad(const float *q, const float *k, const float *v,
                   const float *dOut, int64_t batch, int64_t seq,
                   int64_t heads, int64_t kvHeads, int64_t headDim,
                   bool causal, double scale, float *dq, float *dk, float *dv,
                   bool bf16 = false);

/// attentionGrad on bf16 products over q, k and v stored as bf16
/// (runtime/artifact/Bf16Activations.h); needs bf16AttentionIsNative.
void attentionGradStoredBf16(const uint16_t *q, const uint16_t *k,
                             const uint16_t *v, const float *dOut,
                             int64_t batch, int64_t seq, int64_t heads,
                             int64_t kvHeads, int64_t headDim, bool causal,
                             double scale, float *dq, float *dk, float *dv);

/// silu backward: dx = dy * s * (1 + x (1 - s)), s = sigmoid(x).
void siluGrad(const float *x, const float *dy, int64_t n, float *dx);

/// swiglu backward: dgate = dy * up * silu'(gate), dup = dy * silu(gate).
void swigluGrad(const float *gate, const float *up, const float *dy,
                int64_t n, float *dgate, float *dup);

/// clamp backward: dx = dy where |x| <= limit, else 0 (torch's clamp).
void clampGrad(const float *x, const float *dy, int64_t n, float limit,
               float *dx);

/// sigmoidGate backward: dx = dy * s, dgate[r] = sum(dy * x)[r] * s (1 - s),
/// s = sigmoid(gate[r]).
void sigmoidGateGrad(const float *x, const float *gate, const float *dy,
                     int64_t rows, int64_t width, float *dx, float *dgate);

/// addBias backward to the bias: db = dy [rows, width] summed over rows.
void biasGrad(const float *dy, int64_t rows, int64_t width, float *db);

/// embedding backward: dtable [vocab, d] = scatter-add of dy [n, d] by ids
/// (zero rows for unused ids). Ids were checked by the forward pass.
void embeddingGrad(const int32_t *ids, int64_t n, const float *dy,
                   int64_t vocab, int64_t d, float *dtable);

/// routerTopK backward, to the router logits [tokens, E]: through the
/// softmax, the top-k selection (indices held fixed) and the renormalisation
/// when `normalize`. dlogitsExtra (nullable) is a gradient reaching the
/// logits directly (the load-balancing loss); it is added.
void routerGrad(const float *logits, const int32_t *indices,
                const float *dweights, const float *dlogitsExtra,
                int64_t tokens, int64_t experts, int64_t k, bool normalize,
                float *dlogits);

/// dispatch backward: dx[t] = sum over j of dgrouped[row holding slot
/// t*k + j], summed in j order. sourceSlots as dispatch wrote it.
absl::Status dispatchGrad(const float *dgrouped, const int32_t *sourceSlots,
                          int64_t tokens, int64_t k, int64_t d, float *dx);

/// expertMlp backward: dgrouped [rows, d], dw1/dw3 [E, F, D], dw2
/// [E, D, F] (experts with no rows get zero gradients). The hidden
/// activations x w1^T and x w3^T are read from `gateHidden` / `upHidden`
/// when the forward pass kept them, else recomputed.
absl::Status expertMlpGrad(const float *grouped, const int64_t *counts,
                           int64_t experts, int64_t d, int64_t f, Weight w1,
                           Weight w3, Weight w2, const float *dy,
                           float *dgrouped, float *dw1, float *dw3,
                           float *dw2, const float *gateHidden = nullptr,
                           const float *upHidden = nullptr);

/// fusedExperts backward, from the block's input and router logits: the
/// routing is recomputed from the logits and each expert's hidden
/// activations from x. dlogitsExtra (nullable) reaches the logits directly
/// (the router losses). Writes dx [tokens, D] and the four weight gradients
/// (experts with no rows get zeros). The tokens of `skipped` (as the forward
/// pass skipped them) get only the router's part of dx. With `saved` (the
/// forward pass's KeptHidden; one process only), the hidden states are read
/// instead of recomputed.
absl::Status fusedExpertsGrad(const float *x, int64_t tokens,
                              const MoeBlockWeights &block, int64_t k,
                              bool normalize, const float *logits,
                              const float *dout, const float *dlogitsExtra,
                              float *dx, float *drouter, float *dgate,
                              float *dup, float *ddown,
                              comm::Communicator *expertGroup = nullptr,
                              int64_t exchangeChunks = 1,
                              UnlabelledTail skipped = {},
                              KeptHidden saved = {});

/// combine backward: dy[row holding slot t*k+j] = weights[t, j] * dout[t],
/// dweights[t, j] = <dout[t], y[that row]>.
absl::Status combineGrad(const float *y, const float *weights,
                         const int32_t *sourceSlots, int64_t tokens,
                         int64_t k, int64_t d, const float *dout, float *dy,
                         float *dweights);

/// crossEntropy backward: dlogits = dloss * (softmax - onehot) / count on
/// rows whose label is not ignoreIndex, zero on the others.
absl::Status crossEntropyGrad(const float *logits, const int32_t *labels,
                              int64_t rows, int64_t vocab,
                              int64_t ignoreIndex, float dloss,
                              float *dlogits,
                              comm::Communicator *ranks = nullptr);

/// loadBalancingLoss backward to each layer's router logits; the top-k
/// assignment fractions f_e are constants (not differentiable), so only the
/// mean probabilities P_e carry gradient.
/// Rows `mask` leaves out get zero gradients.
absl::Status loadBalancingLossGrad(const std::vector<const float *> &logits,
                           const std::vector<int64_t> &tokens, int64_t experts,
                           int64_t k, float dloss,
                           const std::vector<float *> &dlogits,
                           TokenMask mask = {},
                           comm::Communicator *ranks = nullptr);

/// Router z-loss, mean over the tokens `mask` counts of logsumexp(logits)^2
/// over all layers, and its backward (zero on the rows left out).
absl::Status routerZLoss(const std::vector<const float *> &logits,
                 const std::vector<int64_t> &tokens, int64_t experts,
                 float *loss, TokenMask mask = {},
                 comm::Communicator *ranks = nullptr);
absl::Status routerZLossGrad(const std::vector<const float *> &logits,
                     const std::vector<int64_t> &tokens, int64_t experts,
                     float dloss, const std::vector<float *> &dlogits,
                     TokenMask mask = {}, comm::Communicator *ranks = nullptr);

} // namespace moert::cpu

#endif // MOERT_CPU_GRAD_H
