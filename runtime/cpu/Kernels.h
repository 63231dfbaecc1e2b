//===- Kernels.h - the CPU backend's kernels --------------------*- C++ -*-===//
//
// Row-major contiguous buffers. Activations are fp32 (the *Bf16 and
// *Stored* variants read or write those a bf16 model stores as bf16);
// weights are fp32, bf16 or f16 (stored as uint16_t) and say so with a
// DType. Kernels run on
// the OpenMP threads of the process and give the same result for any thread
// count (no order-dependent reductions across threads).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_KERNELS_H
#define MOERT_CPU_KERNELS_H

#include "runtime/base/DType.h"
#include "runtime/comm/Communicator.h"

#include "absl/status/status.h"

#include <cstdint>
#include <vector>

namespace moert::cpu {

/// A weight tensor: data in `dtype`.
struct Weight {
  const void *data;
  DType dtype;
};

/// y[M, N] = x[M, K] * w[N, K]^T (the torch.nn.Linear layout), through
/// oneDNN: f32 x f32, or bf16 x bf16 with fp32 accumulation when the weight
/// is bf16 (x is rounded to bf16 on the way in).
absl::Status linear(const float *x, int64_t m, int64_t k, Weight w, int64_t n,
                    float *y);

/// As linear, for an x already in bf16 and a bf16 weight (a few rows
/// stream the weight, as linear's do); needs bf16MatmulIsNative(). Lets a
/// caller convert x once for several GEMMs.
absl::Status linearBf16(const uint16_t *x, int64_t m, int64_t k, Weight w,
                        int64_t n, float *y);

/// linear() over an input and a result each stored as fp32 or bf16 (the
/// activations runtime/artifact/Bf16Activations.h allows), for a bf16 weight
/// when bf16 GEMMs are native: a bf16 input is read as it is, a bf16 result
/// is the fp32 one rounded, so both give linear()'s values.
absl::Status linearStored(const void *x, bool xBf16, int64_t m, int64_t k,
                          Weight w, int64_t n, void *y, bool yBf16);

/// Whether bf16 GEMMs run natively here (AVX512-BF16 or AMX).
bool bf16MatmulIsNative();

/// out[i] = in[i] rounded to bf16 (nearest even), on all threads: the
/// operands of the bf16 GEMMs.
void roundToBf16(const float *in, int64_t n, uint16_t *out);

/// out[i] = in[i] rounded to bf16 for i in [begin, end), on the calling
/// thread.
void roundRangeToBf16(const float *in, int64_t begin, int64_t end,
                      uint16_t *out);

/// out[i] = in[i] widened from bf16 (exact), on all threads.
void widenBf16(const uint16_t *in, int64_t n, float *out);

/// y = x / sqrt(mean(x^2) + eps) * w over rows of width d.
void rmsNorm(const float *x, Weight w, int64_t rows, int64_t d, double eps,
             float *y);

/// rmsNorm into y stored as bf16 (runtime/artifact/Bf16Activations.h):
/// rmsNorm's values rounded.
void rmsNormToBf16(const float *x, Weight w, int64_t rows, int64_t d,
                   double eps, uint16_t *y);

/// out = rotary embedding of x [B, S, heads * headDim] (HF rotate_half
/// pairing i with i + headDim/2); out may be x. positions: [B, S]
/// int32/int64 or null for 0..S-1. `inverse` rotates by the negated angles
/// (rope's transpose).
void rope(const float *x, float *out, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, const void *positions,
          DType positionsType, bool inverse = false);

/// rope into out stored as bf16 (runtime/artifact/Bf16Activations.h):
/// rope's values rounded.
void ropeToBf16(const float *x, uint16_t *out, int64_t batch, int64_t seq,
                int64_t heads, int64_t headDim, double theta,
                const void *positions, DType positionsType,
                bool inverse = false);

/// Scaled dot-product attention: q [B, S, H*Dh], k and v [B, S, Hkv*Dh],
/// query head h reads KV head h / (H / Hkv). With `bf16`, where AVX512-BF16
/// runs, every product is taken on bf16-rounded operands accumulating in fp32
/// (the softmax stays fp32), as mixed-precision attention does.
void attention(const float *q, const float *k, const float *v, int64_t batch,
               int64_t seq, int64_t heads, int64_t kvHeads, int64_t headDim,
               bool causal, double scale, float *out, bool bf16 = false);

/// Whether attention takes bf16 products here for heads of `headDim`.
bool bf16AttentionIsNative(int64_t headDim);

/// attention() on bf16 products over q, k, v and an output stored as bf16
/// (runtime/artifact/Bf16Activations.h); needs bf16AttentionIsNative.
void attentionStoredBf16(const uint16_t *q, const uint16_t *k,
                         const uint16_t *v, int64_t batch, int64_t seq,
                         int64_t heads, int64_t kvHeads, int64_t headDim,
                         bool causal, double scale, uint16_t *out);

/// Whether linear() streams the weights for `rows` input rows rather than
/// calling a GEMM: 1 to 8 rows of fp32 or bf16 weights (StreamingLinear.cpp).
bool streamsLinear(Weight w, int64_t rows);
/// y [rows, n] = x [rows, k] w[n, k]^T, each weight row read once.
void streamLinear(const float *x, int64_t rows, int64_t k, Weight w, int64_t n,
                  float *y);

/// streamLinear over an input stored as bf16, for a bf16 weight when bf16
/// GEMMs are native.
void streamLinearBf16(const uint16_t *x, int64_t rows, int64_t k, Weight w,
                      int64_t n, float *y);

/// Stores row t of sequence b of rows [B, T, W] at cache[b, positions[b, t]]
/// (cache [B, capacity, W]); negative positions store nothing, positions at
/// or past the capacity are an error.
absl::Status cacheWrite(const float *rows, const int32_t *positions,
                        int64_t batch, int64_t count, int64_t width,
                        int64_t capacity, float *cache);

/// Attention of q [B, T, H*Dh] at positions [B, T] over the caches keys and
/// values [B, capacity, Hkv*Dh]: the row at position p attends to cache rows
/// 0..p of its sequence (a negative position gives zeros). With `bf16`, the
/// products take bf16-rounded operands (probabilities included) and
/// accumulate in fp32, as the reference's bf16 attention does.
absl::Status cachedAttention(const float *q, const int32_t *positions,
                             const float *keys, const float *values,
                             int64_t batch, int64_t rows, int64_t capacity,
                             int64_t heads, int64_t kvHeads, int64_t headDim,
                             double scale, bool bf16, float *out);

/// out[b, n] = input[b, index[b, n]] for input [B, rows, W], index [B, N];
/// an index outside [0, rows) is an error.
absl::Status selectRows(const float *input, const int32_t *index,
                        int64_t batch, int64_t rows, int64_t picks,
                        int64_t width, float *out);

void add(const float *a, const float *b, int64_t n, float *out);
void mul(const float *a, const float *b, int64_t n, float *out);
void silu(const float *x, int64_t n, float *out);
/// out = silu(gate) * up.
void swiglu(const float *gate, const float *up, int64_t n, float *out);
/// out = x * factor.
void scale(const float *x, int64_t n, double factor, float *out);
/// out = x[offset : offset + size, :] (axis 0) or x[:, offset : offset +
/// size] (axis 1) of x [rows, cols].
void sliceMatrix(const float *x, int64_t rows, int64_t cols, int64_t axis,
                 int64_t offset, int64_t size, float *out);
/// out = min(max(x, -limit), limit).
void clamp(const float *x, int64_t n, float limit, float *out);
/// out[r, :] = x[r, :] * sigmoid(gate[r]) over rows of width `width`.
void sigmoidGate(const float *x, const float *gate, int64_t rows,
                 int64_t width, float *out);
/// out[r, :] = x[r, :] + bias over rows of width `width`.
void addBias(const float *x, Weight bias, int64_t rows, int64_t width,
             float *out);

/// out[i] = table[ids[i]]; ids outside [0, vocab) are an error naming the
/// position.
absl::Status embedding(Weight table, int64_t vocab, int64_t d,
                       const int32_t *ids, int64_t n, float *out);

/// Softmax over E logits per token (fp32), top-k (1 <= k <= E; ties to the
/// lower index, ordered by descending probability as torch.topk), weights
/// [tokens, k] renormalised to sum 1 if `normalize`, indices [tokens, k].
void routerTopK(const float *logits, int64_t tokens, int64_t experts,
                int64_t k, bool normalize, float *weights, int32_t *indices);

/// Groups the tokens x k copies of x [tokens, d] by expert (stable counting
/// sort: ascending expert, then slot token*k + j). counts [E], sourceSlots
/// [tokens*k] give each row's slot.
absl::Status dispatch(const float *x, const int32_t *indices, int64_t tokens,
                      int64_t k, int64_t experts, int64_t d, float *grouped,
                      int64_t *counts, int32_t *sourceSlots);

/// SwiGLU MLP of each expert over its rows of grouped [rows, d]:
/// out = (silu(x w1[e]^T) * (x w3[e]^T)) w2[e]^T, w1/w3 [E, F, D], w2 [E, D, F],
/// all of one dtype. Experts with no rows are skipped. With `gateHidden` and
/// `upHidden` ([rows, F] each), x w1^T and x w3^T are also kept there for
/// the backward pass.
absl::Status expertMlp(const float *grouped, const int64_t *counts,
                       int64_t experts, int64_t d, int64_t f, Weight w1,
                       Weight w3, Weight w2, float *out,
                       float *gateHidden = nullptr, float *upHidden = nullptr);

/// out[t] = sum_j weights[t, j] * y[row holding slot t*k + j], summed in slot
/// order (weights null: all 1); sourceSlots must be a permutation of
/// [0, tokens*k).
absl::Status combine(const float *y, const float *weights,
                     const int32_t *sourceSlots, int64_t tokens, int64_t k,
                     int64_t d, float *out);

/// The weights of a fused MoE block: router [E, D], gate and up [E, F, D],
/// down [E, D, F]; the experts' three share a dtype.
class PackedExperts;

struct MoeBlockWeights {
  Weight router, gate, up, down;
  int64_t experts, d, f;
  /// The experts repacked for the GEMM when the weights are constant
  /// (PackedExperts.h); null: read in place.
  const PackedExperts *packed = nullptr;
};

/// The tokens of a fused block that skip the experts (their rows of the
/// block's output are zero): with labels [tokens / seq, seq], as the losses
/// read them, those at the end of each row whose labels are all
/// ignoreIndex. Under causal attention no counted position depends on them.
/// No labels: none.
struct UnlabelledTail {
  const int32_t *labels = nullptr;
  int64_t seq = 1, ignoreIndex = -100;
};

/// A fused block's experts' hidden pre-activations x gate[e]^T and
/// x up[e]^T, [tokens * k, F] each, by grouped row (ExpertRouting.h), kept
/// by the forward pass for the backward one (moe.fused_experts_train).
struct KeptHidden {
  float *gate = nullptr, *up = nullptr;
};

/// A whole MoE block (FusedExperts.cpp): logits [tokens, E] = x router^T,
/// top-k routing as routerTopK, and out[t] = sum over t's experts e, in
/// ascending e, of weight * SwiGLU-MLP_e(x[t]). Equals router, dispatch,
/// expertMlp and combine in sequence up to the order of the k-term sum, with
/// no [tokens * k, D] buffer. With an `expertGroup` of several ranks, the
/// gate, up and down weights are this rank's consecutive share of the
/// block.experts experts, and the routed rows are exchanged with the ranks
/// holding the others (ExpertPhases.h), in `exchangeChunks` pipelined
/// pieces; every rank of the group must call. The tokens of `skipped`
/// are routed (their logits are written) but skip the experts. With `kept`
/// (one process only), the hidden states are written there too, and every
/// expert takes the GEMM path.
absl::Status fusedExperts(const float *x, int64_t tokens,
                          const MoeBlockWeights &block, int64_t k,
                          bool normalize, float *out, float *logits,
                          comm::Communicator *expertGroup = nullptr,
                          int64_t exchangeChunks = 1,
                          UnlabelledTail skipped = {}, KeptHidden kept = {});

/// Mean of logsumexp(logits) - logits[label] over labels != ignoreIndex.
/// With `ranks`, the batch is every rank's rows together (the loss kernels
/// sum their counts and partial sums over the ranks, so every rank gets
/// the loss of the global batch, and its gradients are its rows' share).
absl::Status crossEntropy(const float *logits, const int32_t *labels,
                          int64_t rows, int64_t vocab, int64_t ignoreIndex,
                          float *loss, comm::Communicator *ranks = nullptr);

/// The tokens the router losses count: row t of every layer's router
/// logits is token t, counted unless its label is ignoreIndex. Padding of
/// short training lines has no label, and transformers leaves it out of the
/// router losses through the attention mask. No labels: every token counts.
struct TokenMask {
  const int32_t *labels = nullptr;
  int64_t ignoreIndex = -100;
  bool counts(int64_t t) const { return !labels || labels[t] != ignoreIndex; }
};

/// E * sum_e f_e * P_e over the router logits of all layers together, with
/// f_e = (top-k assignments to e) / tokens (as transformers computes it, so
/// balanced routing gives about k) and P_e the mean probability of e, over
/// the tokens `mask` counts.
absl::Status loadBalancingLoss(const std::vector<const float *> &logits,
                       const std::vector<int64_t> &tokens, int64_t experts,
                       int64_t k, float *loss, TokenMask mask = {},
                       comm::Communicator *ranks = nullptr);

//===----------------------------------------------------------------------===//
// Initialisation programs (Drop-Upcycling). Random draws come from the
// counter-based stream (seed, keyOf(stream)), element by element.
//===----------------------------------------------------------------------===//

/// `count` distinct indices of [0, range), uniformly at random, ascending.
void randomIndices(int64_t count, int64_t range, uint64_t seed,
                   uint64_t key, int64_t *out);

/// Mean and unbiased std (fp64) of the rows (axis 0) or columns (axis 1)
/// `indices` of x [rows, cols]; std is 0 with fewer than two elements.
absl::Status sliceMoments(const float *x, int64_t rows, int64_t cols,
                          const int64_t *indices, int64_t count, int64_t axis,
                          float *mean, float *std);

/// out = x with the chosen rows/columns redrawn from Normal(mean, std)
/// (`noise` false) or with Normal(0, std) added (`noise` true). Element
/// (r, c) uses stream element r * cols + c, so results do not depend on
/// which other slices are chosen.
absl::Status redrawSlice(const float *x, int64_t rows, int64_t cols,
                         const int64_t *indices, int64_t count, int64_t axis,
                         float mean, float std, bool noise, uint64_t seed,
                         uint64_t key, float *out);

/// n draws of Normal(0, std), or (centered) uniform draws shifted by their
/// sample mean and scaled to std: (u - mean(u)) * std * sqrt(12).
void randomTensor(int64_t n, double std, bool centeredUniform, uint64_t seed,
                  uint64_t key, float *out);

} // namespace moert::cpu

#endif // MOERT_CPU_KERNELS_H
