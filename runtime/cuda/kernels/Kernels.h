//===- Kernels.h - the CUDA backend's kernels -------------------*- C++ -*-===//
//
// The kernels the launch table (CudaLaunch.cpp) enqueues, as the CPU's
// runtime/cpu/Kernels.h names them. Each takes the shape the launch table
// computed and checked (LaunchShape.h) and the stream, and returns the
// launch's error; they never synchronise. Activations are fp32, weights fp32,
// bf16 or f16 as their DType says; the arithmetic is that of ../math.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_KERNELS_KERNELS_H
#define MOERT_CUDA_KERNELS_KERNELS_H

#include "runtime/base/DType.h"
#include "runtime/cuda/LaunchShape.h"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace moert::cuda {

/// What a kernel found wrong in its data (an id out of range), written to a
/// slot in device memory that the stream reads back when it synchronises.
struct DeviceFault {
  int32_t code;     // kNoFault, or what went wrong
  int32_t site;     // which launch (the backend's table of sites)
  int64_t value;    // the offending value
  int64_t position; // where it was
  int64_t limit;    // the bound it broke
};
enum FaultCode : int32_t {
  kNoFault = 0,
  kIdOutOfRange,     // value: the id, position: its position, limit: vocab
  kExpertOutOfRange, // value: the index, position: its slot, limit: experts
  kPastCapacity,     // value: the position, position: its sequence
  kRowOutOfRange,    // value: the row index, position: its sequence
  kNotPermutation,   // limit: the slots
  kLabelOutOfRange,  // value: the label, position: its row, limit: vocab
  kSliceIndexOutOfRange, // value: the index, limit: the axis
};

enum class Unary { kSilu, kClamp, kScale, kFill };
enum class Binary { kAdd, kMul, kSwiglu };

/// out[i] = f(x[i]) (x unused by kFill; `param` is the limit, factor or value).
cudaError_t unary(Unary op, const float *x, int64_t n, float param, float *out,
                  const LaunchShape &shape, cudaStream_t stream);
/// out[i] = f(a[i], b[i]).
cudaError_t binary(Binary op, const float *a, const float *b, int64_t n,
                   float *out, const LaunchShape &shape, cudaStream_t stream);
/// out[r, j] = x[r, j] + bias[j].
cudaError_t addBias(const float *x, const void *bias, DType biasType,
                    int64_t rows, int64_t width, float *out,
                    const LaunchShape &shape, cudaStream_t stream);
/// out[r, j] = x[r, j] * sigmoid(gate[r]).
cudaError_t sigmoidGate(const float *x, const float *gate, int64_t rows,
                        int64_t width, float *out, const LaunchShape &shape,
                        cudaStream_t stream);
/// out[i, :] = table[ids[i], :]; an id outside [0, vocab) faults.
cudaError_t embedding(const void *table, DType tableType, int64_t vocab,
                      int64_t d, const int32_t *ids, int64_t count, float *out,
                      DeviceFault *fault, int32_t site,
                      const LaunchShape &shape, cudaStream_t stream);
/// RMSNorm over groups of `group` features (one block per group; `groups`
/// at least 1).
cudaError_t rmsNorm(const float *x, const void *weight, DType weightType,
                    int64_t groups, int64_t group, double eps, float *y,
                    const LaunchShape &shape, cudaStream_t stream);
/// RoPE's frequency of each pair of a head, computed on the host with the
/// CPU's powf (the device's may differ by ulps, which long positions turn
/// into visible angle errors).
constexpr int kMaxRopeHeadDim = 256;
struct RopeFrequencies {
  float inverse[kMaxRopeHeadDim / 2];
};
/// Rotary embedding of [batch * seq, heads * headDim] (one block per token);
/// positions (int32 or int64 [batch * seq]) or null for 0..seq-1.
cudaError_t rope(const float *x, float *out, int64_t tokens, int64_t seq,
                 int64_t heads, int64_t headDim,
                 const RopeFrequencies &frequencies, const void *positions,
                 DType positionsType, bool inverse, const LaunchShape &shape,
                 cudaStream_t stream);
/// Softmax top-k of router logits [tokens, experts], one thread per token
/// (experts <= kMaxRouterExperts).
constexpr int kMaxRouterExperts = 256;
cudaError_t routerTopK(const float *logits, int64_t tokens, int experts, int k,
                       bool normalize, float *weights, int32_t *indices,
                       const LaunchShape &shape, cudaStream_t stream);
/// Scaled dot-product attention as the CPU's cpu::attention: q [B, S,
/// H*Dh], k and v [B, S, Hkv*Dh]; with `bf16` the products take
/// bf16-rounded operands. Shape: attentionShape.
constexpr int kAttentionTile = 32;     // query rows and key rows per tile
constexpr int kAttentionThreads = 128; // 4 threads per query row
constexpr int kMaxAttentionHeadDim = 256;
inline LaunchShape attentionShape(int64_t batch, int64_t seq, int64_t heads,
                                  int64_t headDim) {
  int64_t tiles = (seq + kAttentionTile - 1) / kAttentionTile;
  int64_t floats = 3 * kAttentionTile * headDim +
                   kAttentionTile * (kAttentionTile + 1);
  return {std::max<int64_t>(tiles, 1), batch * heads, 1, kAttentionThreads,
          floats * int64_t(sizeof(float))};
}
cudaError_t attention(const float *q, const float *k, const float *v,
                      int64_t seq, int64_t heads, int64_t kvHeads,
                      int64_t headDim, bool causal, float scale, bool bf16,
                      float *out, const LaunchShape &shape,
                      cudaStream_t stream);
/// Attention of q [B, T, H*Dh] at positions [B, T] over the caches [B,
/// capacity, Hkv*Dh] as cpu::cachedAttention: the row at position p attends
/// to cache rows 0..p (a negative position gives zeros, one at or past the
/// capacity a fault). Shape: attentionShape(B, T, H, Dh).
cudaError_t cachedAttention(const float *q, const int32_t *positions,
                            const float *keys, const float *values,
                            int64_t rows, int64_t capacity, int64_t heads,
                            int64_t kvHeads, int64_t headDim, float scale,
                            bool bf16, float *out, DeviceFault *fault,
                            int32_t site, const LaunchShape &shape,
                            cudaStream_t stream);
/// The tokens of a training step's fused block that skip the experts: those
/// past the last labelled position of their sequence (lastLabelled null:
/// none). k is the block's top-k.
struct SkippedTokens {
  const int64_t *lastLabelled = nullptr; // [sequences]
  int64_t seq = 1, k = 1;
};
/// last[b] = the last position of sequence b whose label is not
/// ignoreIndex (-1: none). Elementwise shape over the sequences.
cudaError_t lastLabelled(const int32_t *labels, int64_t sequences, int64_t seq,
                         int64_t ignoreIndex, int64_t *last,
                         const LaunchShape &shape, cudaStream_t stream);
/// A fused MoE block's grouping (ExpertRows.cu): counts [experts] of each
/// expert's slots among `indices` [slots], the slot of each grouped row (by
/// expert, then slot) and each slot's grouped row (-1 for a skipped
/// token's). Shape: rowShape(experts, a multiple of 32).
cudaError_t groupRows(const int32_t *indices, int64_t slots, int64_t experts,
                      const SkippedTokens &skip, int64_t *counts,
                      int32_t *slotOfRow, int64_t *rowOfSlot,
                      DeviceFault *fault, int32_t site,
                      const LaunchShape &shape, cudaStream_t stream);
/// rowOfSlot [slots] of sourceSlots [slots] (dispatch's order), which must
/// be a permutation of [0, slots). Elementwise shape over the slots.
cudaError_t invertSlots(const int32_t *sourceSlots, int64_t slots,
                        int64_t *rowOfSlot, DeviceFault *fault, int32_t site,
                        const LaunchShape &shape, cudaStream_t stream);
/// The grouped rows [rows, d]: row r is x's row of token slotOfRow[r] / k,
/// in fp32 or rounded to bf16; zeros where slotOfRow[r] is negative (rows
/// past the grouped ones, when only a bound on them is known).
cudaError_t gatherRows(const float *x, const int32_t *slotOfRow, int64_t rows,
                       int64_t d, int64_t k, bool toBf16, void *out,
                       const LaunchShape &shape, cudaStream_t stream);
/// silu(gate) * up, in fp32 or rounded to bf16 (the down GEMM's input).
cudaError_t swigluRows(const float *gate, const float *up, int64_t n,
                       bool toBf16, void *out, const LaunchShape &shape,
                       cudaStream_t stream);
/// The experts' bf16 GEMMs over grouped rows whose counts [experts] stay on
/// the device (ExpertGemm.cu): hidden [*, f] = SwiGLU(rows gate[e]^T,
/// rows up[e]^T) rounded to bf16 (and the pre-activations into keptGate and
/// keptUp unless null), out [*, d] = hidden down[e]^T. d and f multiples of
/// 8, every pointer 16-byte aligned. Shape: expertGemmShape (LaunchShape.h).
cudaError_t expertGateUp(const uint16_t *rows, const int64_t *counts,
                         int64_t experts, int64_t d, int64_t f,
                         const uint16_t *gate, const uint16_t *up,
                         uint16_t *hidden, float *keptGate, float *keptUp,
                         const LaunchShape &shape, cudaStream_t stream);
cudaError_t expertDown(const uint16_t *hidden, const int64_t *counts,
                       int64_t experts, int64_t f, int64_t d,
                       const uint16_t *down, float *out,
                       const LaunchShape &shape, cudaStream_t stream);
/// out [tokens, d]: each token's grouped rows, weighted (weights null: 1),
/// added in ascending expert order (the fused block's) or, `inSlotOrder`,
/// in slot order (moe.combine's); slots whose grouped row is -1 are skipped.
cudaError_t combineRows(const float *rows, const int64_t *rowOfSlot,
                        const float *weights, int64_t tokens, int64_t k,
                        int64_t d, bool inSlotOrder, float *out,
                        const LaunchShape &shape, cudaStream_t stream);

/// The experts' SwiGLU backward by grouped row (one block per row): from
/// the gate and up pre-activations and g (each row's output gradient times
/// the down weight), w * act and the gradients of gate and up through
/// w * act (fp32 or bf16), w the row's routing weight (weights null: 1);
/// with weights, dweights[slot] = <g, act>.
cudaError_t swigluRowsGrad(const float *gate, const float *up, const float *g,
                           const float *weights, const int32_t *slotOfRow,
                           int64_t f, bool toBf16, void *actW, void *dgate,
                           void *dup, float *dweights,
                           const LaunchShape &shape, cudaStream_t stream);
/// combine backward, one block per grouped row (after the source slots were
/// checked by invertSlots): dy [rows, d] and dweights [tokens * k].
cudaError_t combineGrad(const float *y, const float *weights,
                        const int32_t *sourceSlots, int64_t k, int64_t d,
                        const float *dout, float *dy, float *dweights,
                        const LaunchShape &shape, cudaStream_t stream);

/// Generation's caches [B, capacity, W]: row t of sequence b of rows
/// [B, T, W] goes to cache[b, positions[b, t]] (negative: nowhere; at or
/// past the capacity: a fault). Elementwise shape over the rows.
cudaError_t cacheWrite(const float *rows, const int32_t *positions,
                       int64_t batch, int64_t count, int64_t width,
                       int64_t capacity, float *cache, DeviceFault *fault,
                       int32_t site, const LaunchShape &shape,
                       cudaStream_t stream);
/// out[b, n] = input[b, index[b, n]] for input [B, rows, W] (an index
/// outside [0, rows): a fault). Elementwise shape over the output.
cudaError_t selectRows(const float *input, const int32_t *index, int64_t batch,
                       int64_t rows, int64_t picks, int64_t width, float *out,
                       DeviceFault *fault, int32_t site,
                       const LaunchShape &shape, cudaStream_t stream);
/// Rounds fp32 to bf16 (a GEMM's input beside a bf16 weight).
cudaError_t roundToBf16(const float *x, int64_t n, uint16_t *out,
                        const LaunchShape &shape, cudaStream_t stream);
/// Widens a weight stored as bf16 or f16 to fp32.
cudaError_t widen(const void *w, DType type, int64_t n, float *out,
                  const LaunchShape &shape, cudaStream_t stream);

} // namespace moert::cuda

#endif // MOERT_CUDA_KERNELS_KERNELS_H
