//===- ExpertRows.cu - a fused MoE block's grouping, gathers and combine -===//
//
// The routing of the CPU's ExpertRouting.h on the device: token copies
// ("slots", token * k + j) grouped by expert, then by slot, with no host
// round trip and no atomics, so the grouping (and everything after it) is
// the same on every run. One block per expert counts its slots; one block
// per expert then places them, its first row the sum of the counts before
// it, its order a block-wide scan over the slots.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/kernels/Kernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/Activations.h"
#include "runtime/cuda/math/Storage.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

/// Whether slot s's token skips the experts: it lies past the last labelled
/// position of its sequence.
__device__ bool skipped(const SkippedTokens &skip, int64_t s) {
  if (!skip.lastLabelled)
    return false;
  int64_t token = s / skip.k;
  return token % skip.seq > skip.lastLabelled[token / skip.seq];
}

__global__ void lastLabelledKernel(const int32_t *labels, int64_t sequences,
                                   int64_t seq, int64_t ignoreIndex,
                                   int64_t *last) {
  for (int64_t b = firstIndex(); b < sequences; b += gridStride()) {
    int64_t found = -1;
    for (int64_t t = 0; t < seq; ++t)
      if (labels[b * seq + t] != ignoreIndex)
        found = t;
    last[b] = found;
  }
}

__global__ void countRowsKernel(const int32_t *indices, int64_t slots,
                                int64_t experts, SkippedTokens skip,
                                int64_t *counts, DeviceFault *fault,
                                int32_t site) {
  int expert = blockIdx.x;
  double mine = 0; // blockSum's type; counts stay exact far beyond 2^31
  for (int64_t s = threadIdx.x; s < slots; s += blockDim.x) {
    mine += indices[s] == expert && !skipped(skip, s);
    // An index of no expert would be in no row: the first block says so.
    if (expert == 0 && (indices[s] < 0 || indices[s] >= experts))
      reportFault(fault, kExpertOutOfRange, site, indices[s], s, experts);
  }
  double total = blockSum(mine);
  if (threadIdx.x == 0)
    counts[expert] = int64_t(total);
}

/// Block-wide exclusive prefix count of `flag` in thread order; `total`
/// gets the block's sum. blockDim.x is a multiple of 32.
__device__ int exclusiveCount(bool flag, int &total) {
  __shared__ int warpTotals[32];
  unsigned ballot = __ballot_sync(0xffffffffu, flag);
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int before = __popc(ballot & ((1u << lane) - 1));
  __syncthreads();
  if (lane == 0)
    warpTotals[warp] = __popc(ballot);
  __syncthreads();
  int offset = 0;
  total = 0;
  for (int w = 0; w < int(blockDim.x / 32); ++w) {
    offset += w < warp ? warpTotals[w] : 0;
    total += warpTotals[w];
  }
  return offset + before;
}

__global__ void placeRowsKernel(const int32_t *indices, int64_t slots,
                                SkippedTokens skip, const int64_t *counts,
                                int32_t *slotOfRow, int64_t *rowOfSlot) {
  int expert = blockIdx.x;
  int64_t next = 0;
  for (int e = 0; e < expert; ++e)
    next += counts[e];
  for (int64_t base = 0; base < slots; base += blockDim.x) {
    int64_t s = base + threadIdx.x;
    bool mine = s < slots && indices[s] == expert && !skipped(skip, s);
    int total;
    int before = exclusiveCount(mine, total);
    if (mine) {
      slotOfRow[next + before] = int32_t(s);
      rowOfSlot[s] = next + before;
    }
    next += total;
  }
}

__global__ void gatherRowsKernel(const float *x, const int32_t *slotOfRow,
                                 int64_t rows, int64_t d, int64_t k,
                                 bool toBf16, void *out) {
  for (int64_t i = firstIndex(); i < rows * d; i += gridStride()) {
    int32_t slot = slotOfRow[i / d];
    float value = slot < 0 ? 0.0f : x[(slot / k) * d + i % d];
    if (toBf16)
      static_cast<uint16_t *>(out)[i] = floatToBf16(value);
    else
      static_cast<float *>(out)[i] = value;
  }
}

__global__ void swigluRowsKernel(const float *gate, const float *up, int64_t n,
                                 bool toBf16, void *out) {
  for (int64_t i = firstIndex(); i < n; i += gridStride()) {
    float value = swiglu(gate[i], up[i]);
    if (toBf16)
      static_cast<uint16_t *>(out)[i] = floatToBf16(value);
    else
      static_cast<float *>(out)[i] = value;
  }
}

__global__ void invertSlotsKernel(const int32_t *sourceSlots, int64_t slots,
                                  int64_t *rowOfSlot, DeviceFault *fault,
                                  int32_t site) {
  for (int64_t r = firstIndex(); r < slots; r += gridStride()) {
    int64_t slot = sourceSlots[r];
    // Out of range, or taken twice: not a permutation.
    auto *target = reinterpret_cast<unsigned long long *>(rowOfSlot + slot);
    if (slot < 0 || slot >= slots ||
        atomicCAS(target, ~0ull, static_cast<unsigned long long>(r)) != ~0ull)
      reportFault(fault, kNotPermutation, site, slot, r, slots);
  }
}

/// out[t, j] = the sum over t's slots of weight * rows[row, j]: in slot
/// order (moe.combine), or in ascending grouped row, that is ascending
/// expert (the CPU's sumStagedRows).
__global__ void combineRowsKernel(const float *rows, const int64_t *rowOfSlot,
                                  const float *weights, int64_t tokens,
                                  int64_t k, int64_t d, bool inSlotOrder,
                                  float *out) {
  for (int64_t i = firstIndex(); i < tokens * d; i += gridStride()) {
    int64_t t = i / d, j = i % d;
    const int64_t *mine = rowOfSlot + t * k;
    float sum = 0;
    if (inSlotOrder) {
      for (int64_t c = 0; c < k; ++c)
        if (mine[c] >= 0)
          sum += (weights ? weights[t * k + c] : 1.0f) * rows[mine[c] * d + j];
      out[i] = sum;
      continue;
    }
    int64_t previous = -1;
    for (int64_t taken = 0; taken < k; ++taken) {
      int64_t pick = -1, slot = -1;
      for (int64_t c = 0; c < k; ++c)
        if (mine[c] > previous && (pick < 0 || mine[c] < pick)) {
          pick = mine[c];
          slot = t * k + c;
        }
      if (pick < 0)
        break;
      sum += (weights ? weights[slot] : 1.0f) * rows[pick * d + j];
      previous = pick;
    }
    out[i] = sum;
  }
}

__device__ inline void store(void *to, int64_t i, float value, bool bf16) {
  if (bf16)
    static_cast<uint16_t *>(to)[i] = floatToBf16(value);
  else
    static_cast<float *>(to)[i] = value;
}

/// One block per grouped row r, of slot s (w its routing weight, 1 when
/// weights is null) and g = the token's output gradient times w2: w * act,
/// and the gradients of gate and up through w * act, fp32 or bf16; with
/// weights, dweights[s] = <g, act>.
__global__ void swigluRowsGradKernel(const float *gate, const float *up,
                                     const float *g, const float *weights,
                                     const int32_t *slotOfRow, int64_t f,
                                     bool toBf16, void *actW, void *dgate,
                                     void *dup, float *dweights) {
  int64_t r = blockIdx.x;
  float w = weights ? weights[slotOfRow[r]] : 1.0f;
  double dot = 0;
  for (int64_t j = threadIdx.x; j < f; j += blockDim.x) {
    int64_t i = r * f + j;
    float h = gate[i], u = up[i], gi = g[i];
    float s = sigmoid(h), act = h * s * u, dh = w * gi;
    dot += double(gi) * act;
    store(actW, i, w * act, toBf16);
    store(dgate, i, dh * u * s * (1.0f + h * (1.0f - s)), toBf16);
    store(dup, i, dh * h * s, toBf16);
  }
  dot = blockSum(dot);
  if (weights && threadIdx.x == 0)
    dweights[slotOfRow[r]] = float(dot);
}

/// One block per grouped row r (slot s = sourceSlots[r], token t = s / k):
/// dy[r] = weights[s] * dout[t], dweights[s] = <dout[t], y[r]>.
__global__ void combineGradKernel(const float *y, const float *weights,
                                  const int32_t *sourceSlots, int64_t slots,
                                  int64_t k, int64_t d, const float *dout,
                                  float *dy, float *dweights) {
  int64_t r = blockIdx.x, slot = sourceSlots[r], t = slot / k;
  if (slot < 0 || slot >= slots) // invertSlots reported it
    return;
  double dot = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    dot += double(dout[t * d + j]) * y[r * d + j];
    dy[r * d + j] = weights[slot] * dout[t * d + j];
  }
  dot = blockSum(dot);
  if (threadIdx.x == 0)
    dweights[slot] = float(dot);
}

} // namespace

cudaError_t swigluRowsGrad(const float *gate, const float *up, const float *g,
                           const float *weights, const int32_t *slotOfRow,
                           int64_t f, bool toBf16, void *actW, void *dgate,
                           void *dup, float *dweights,
                           const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, swigluRowsGradKernel, gate, up, g, weights,
                    slotOfRow, f, toBf16, actW, dgate, dup, dweights);
}

cudaError_t combineGrad(const float *y, const float *weights,
                        const int32_t *sourceSlots, int64_t k, int64_t d,
                        const float *dout, float *dy, float *dweights,
                        const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, combineGradKernel, y, weights, sourceSlots,
                    int64_t(shape.gridX), k, d, dout, dy, dweights);
}

cudaError_t lastLabelled(const int32_t *labels, int64_t sequences, int64_t seq,
                         int64_t ignoreIndex, int64_t *last,
                         const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, lastLabelledKernel, labels, sequences, seq,
                    ignoreIndex, last);
}

cudaError_t groupRows(const int32_t *indices, int64_t slots, int64_t experts,
                      const SkippedTokens &skip, int64_t *counts,
                      int32_t *slotOfRow, int64_t *rowOfSlot,
                      DeviceFault *fault, int32_t site,
                      const LaunchShape &shape, cudaStream_t stream) {
  if (cudaError_t error = launchWith(shape, stream, countRowsKernel, indices,
                                     slots, experts, skip, counts, fault, site);
      error != cudaSuccess)
    return error;
  // Slots in no expert's rows (a faulty index) keep -1: nothing reads them.
  if (cudaError_t error = cudaMemsetAsync(rowOfSlot, 0xff,
                                          slots * sizeof(int64_t), stream);
      error != cudaSuccess)
    return error;
  return launchWith(shape, stream, placeRowsKernel, indices, slots, skip,
                    static_cast<const int64_t *>(counts), slotOfRow, rowOfSlot);
}

cudaError_t gatherRows(const float *x, const int32_t *slotOfRow, int64_t rows,
                       int64_t d, int64_t k, bool toBf16, void *out,
                       const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, gatherRowsKernel, x, slotOfRow, rows, d, k,
                    toBf16, out);
}

cudaError_t swigluRows(const float *gate, const float *up, int64_t n,
                       bool toBf16, void *out, const LaunchShape &shape,
                       cudaStream_t stream) {
  return launchWith(shape, stream, swigluRowsKernel, gate, up, n, toBf16, out);
}

cudaError_t invertSlots(const int32_t *sourceSlots, int64_t slots,
                        int64_t *rowOfSlot, DeviceFault *fault, int32_t site,
                        const LaunchShape &shape, cudaStream_t stream) {
  if (cudaError_t error = cudaMemsetAsync(rowOfSlot, 0xff,
                                          slots * sizeof(int64_t), stream);
      error != cudaSuccess)
    return error;
  return launchWith(shape, stream, invertSlotsKernel, sourceSlots, slots,
                    rowOfSlot, fault, site);
}

cudaError_t combineRows(const float *rows, const int64_t *rowOfSlot,
                        const float *weights, int64_t tokens, int64_t k,
                        int64_t d, bool inSlotOrder, float *out,
                        const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, combineRowsKernel, rows, rowOfSlot, weights,
                    tokens, k, d, inSlotOrder, out);
}

} // namespace moert::cuda
