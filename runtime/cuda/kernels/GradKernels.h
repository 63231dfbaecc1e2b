//===- GradKernels.h - the CUDA backend's training kernels ------*- C++ -*-===//
//
// The backward kernels and losses of a training program, as the CPU's
// runtime/cpu/Grad.h names them; conventions as in Kernels.h. Sums that the
// CPU takes in a fixed order are taken in a fixed order here too (no
// atomics), so a step gives the same bits on every run.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_KERNELS_GRADKERNELS_H
#define MOERT_CUDA_KERNELS_GRADKERNELS_H

#include "runtime/cuda/kernels/Kernels.h"

#include <utility>

namespace moert::cuda {

enum class UnaryGrad { kSilu, kClamp };
/// dx[i] = f'(x[i]) dy[i] (`param` the clamp's limit).
cudaError_t unaryGrad(UnaryGrad op, const float *x, const float *dy,
                      int64_t n, float param, float *dx,
                      const LaunchShape &shape, cudaStream_t stream);
/// swiglu backward: dgate, dup [n].
cudaError_t swigluGrad(const float *gate, const float *up, const float *dy,
                       int64_t n, float *dgate, float *dup,
                       const LaunchShape &shape, cudaStream_t stream);
/// sigmoidGate backward, one block per row: dx [rows, width], dgate [rows].
cudaError_t sigmoidGateGrad(const float *x, const float *gate, const float *dy,
                            int64_t rows, int64_t width, float *dx,
                            float *dgate, const LaunchShape &shape,
                            cudaStream_t stream);
/// rmsNorm backward to x, one block per group: dx, and each group's inverse
/// norm [groups] for the weight's gradient.
cudaError_t rmsNormGrad(const float *x, const void *weight, DType weightType,
                        const float *dy, int64_t group, double eps, float *dx,
                        float *inverses, const LaunchShape &shape,
                        cudaStream_t stream);

/// Column sums of [rows, cols], rows added in order in double: two passes,
/// kColumnChunk rows per block, then the chunks in order. `partials` is
/// scratch of ceil(rows / kColumnChunk) * cols doubles.
constexpr int64_t kColumnChunk = 1024;
inline LaunchShape columnShape(int64_t rows, int64_t cols) {
  return {(cols + 255) / 256, std::max<int64_t>((rows + kColumnChunk - 1) /
                                                    kColumnChunk, 1),
          1, 256, 0};
}
/// out[c] = sum over r of a[r, c] (b null), or of a[r, c] * b[r, c] *
/// scale[r] (the norm weight's gradient: dy * x * inverse). Shape:
/// columnShape.
cudaError_t columnSums(const float *a, const float *b, const float *scale,
                       int64_t rows, int64_t cols, double *partials,
                       float *out, const LaunchShape &shape,
                       cudaStream_t stream);
/// The same over doubles, into doubles (the router losses' statistics).
cudaError_t columnSums(const double *a, int64_t rows, int64_t cols,
                       double *partials, double *out, const LaunchShape &shape,
                       cudaStream_t stream);

/// embedding backward: dtable [vocab, d], each row the sum of dy's rows of
/// its id, in position order (one block per id). Shape: rowShape(vocab, 256).
cudaError_t embeddingGrad(const int32_t *ids, int64_t n, const float *dy,
                          int64_t d, float *dtable, const LaunchShape &shape,
                          cudaStream_t stream);

/// attention backward (AttentionGrad.cu): dq [B, S, H*Dh], dk and dv [B, S,
/// Hkv*Dh], recomputing the probabilities; `lse` and `delta` are scratch of
/// B * H * S floats. Shapes: attentionGradShapes (both kernels' grids).
inline int64_t attentionGradSharedBytes(int64_t headDim) {
  return (4 * kAttentionTile * headDim +
          2 * kAttentionTile * (kAttentionTile + 1)) *
         int64_t(sizeof(float));
}
/// The query kernel's and the key kernel's launch shapes.
inline std::pair<LaunchShape, LaunchShape>
attentionGradShapes(int64_t batch, int64_t seq, int64_t heads,
                    int64_t kvHeads, int64_t headDim) {
  int64_t tiles = std::max<int64_t>((seq + kAttentionTile - 1) / kAttentionTile,
                                    1);
  int64_t bytes = attentionGradSharedBytes(headDim);
  return {{tiles, batch * heads, 1, kAttentionThreads, bytes},
          {tiles, batch * kvHeads, 1, kAttentionThreads, bytes}};
}
cudaError_t attentionGrad(const float *q, const float *k, const float *v,
                          const float *dout, int64_t batch, int64_t seq,
                          int64_t heads, int64_t kvHeads, int64_t headDim,
                          bool causal, float scale, bool bf16, float *dq,
                          float *dk, float *dv, float *lse, float *delta,
                          cudaStream_t stream);

/// routerTopK backward, one thread per token: dlogits [tokens, E].
cudaError_t routerGrad(const float *logits, const int32_t *indices,
                       const float *dweights, const float *extra,
                       int64_t tokens, int experts, int k, bool normalize,
                       float *dlogits, const LaunchShape &shape,
                       cudaStream_t stream);

/// Cross-entropy's per-row terms (one block per row): term[r] =
/// logsumexp(row) - row[label] and counted[r] = 1, or 0 and 0 for
/// ignoreIndex; a label outside [0, vocab) faults.
cudaError_t crossEntropyRows(const float *logits, const int32_t *labels,
                             int64_t vocab, int64_t ignoreIndex, double *terms,
                             double *counted, DeviceFault *fault, int32_t site,
                             const LaunchShape &shape, cudaStream_t stream);
/// loss = sum(terms) / sum(counted) (0 when none count) and count =
/// sum(counted), either null, sums in order (one block).
cudaError_t meanOfTerms(const double *terms, const double *counted,
                        int64_t rows, float *loss, float *count,
                        cudaStream_t stream);
/// Cross-entropy backward (one block per row): dloss * (softmax - onehot) /
/// count (the predicted rows, as meanOfTerms counted them).
cudaError_t crossEntropyGrad(const float *logits, const int32_t *labels,
                             int64_t vocab, int64_t ignoreIndex,
                             const float *dloss, const float *count,
                             float *dlogits, const LaunchShape &shape,
                             cudaStream_t stream);

/// One layer's router statistics for the router losses, one thread per
/// token (experts <= kMaxRouterExperts): stats [tokens, 2E + 2] holds the
/// token's top-k assignments (E), softmax probabilities (E), whether it
/// counts, and logsumexp^2 when it counts; rows the mask leaves out are
/// zero. labels null: every token counts.
cudaError_t routerStats(const float *logits, int64_t tokens, int experts,
                        int k, const int32_t *labels, int64_t ignoreIndex,
                        double *stats, const LaunchShape &shape,
                        cudaStream_t stream);
/// The router losses' gradient to one layer's logits, one thread per
/// token: through the softmax with dp_e = scale[e] (load balancing) or
/// 2 lse * scale[0] p_e (z-loss, `zLoss`); masked rows get zeros. `scale`
/// is device memory that the loss's statistics left.
cudaError_t routerLossGrad(const float *logits, int64_t tokens, int experts,
                           const int32_t *labels, int64_t ignoreIndex,
                           bool zLoss, const double *scale, float *dlogits,
                           const LaunchShape &shape, cudaStream_t stream);
/// From the column sums of every layer's stats (sums [2E + 2]) and the
/// upstream gradient (null for the loss itself): the load-balancing loss
/// E * sum_e f_e P_e, or its per-expert dp scale dloss * E * f_e / total;
/// the z-loss mean, or its 2 * dloss / total. One thread.
cudaError_t routerLossFinish(const double *sums, int experts, bool zLoss,
                             const float *dloss, float *loss, double *scale,
                             cudaStream_t stream);

} // namespace moert::cuda

#endif // MOERT_CUDA_KERNELS_GRADKERNELS_H
