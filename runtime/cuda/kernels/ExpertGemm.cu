//===- ExpertGemm.cu - the experts' bf16 GEMMs over device counts ---------===//
//
// A grouped GEMM for the fused MoE block that needs nothing from the host
// but a bound on the rows: each block reads the experts' row counts on the
// device and takes one 64-row tile of one expert (math/ExpertTiles.h), so
// the routing never comes back to the host. Two epilogues:
//  - gate/up: one block computes a 64-neuron column tile of both the gate
//    and the up GEMM and writes their SwiGLU, rounded to bf16 (the down
//    GEMM's input), and the pre-activations where the forward keeps them;
//  - down: the rows' fp32 outputs, which the combine kernel weights and
//    adds in ascending expert order.
// The products are mma.sync m16n8k16 bf16 with fp32 accumulation; tiles
// pass through shared memory in 16-byte loads, so the depth (d or f) must be
// a multiple of 8 and the operands 16-byte aligned (the caller checks the
// weights; the rows and hidden states are pool allocations).
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/ExpertTiles.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

/// D += A B for one m16n8k16 tile (bf16 inputs, fp32 accumulators).
__device__ inline void mma16816(float (&d)[4], const uint32_t (&a)[4],
                                uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Two adjacent bf16 of shared memory as one register (low half first).
__device__ inline uint32_t pair(const uint16_t *at) {
  return *reinterpret_cast<const uint32_t *>(at);
}

using TileRows = uint16_t[kExpertTileRows][kExpertTileStride];

/// Rows [0, rows) of `source` (row length `depth`), columns [k0, k0 + 32),
/// into `tile`; rows past `rows` and columns past `depth` as zeros.
__device__ inline void loadTile(TileRows &tile, const uint16_t *source,
                                int64_t rows, int64_t depth, int64_t k0) {
  constexpr int kChunks = kExpertTileK / 8; // 16-byte chunks per row
  for (int c = threadIdx.x; c < kExpertTileRows * kChunks;
       c += kExpertGemmThreads) {
    int r = c / kChunks, col = (c % kChunks) * 8;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (r < rows && k0 + col < depth)
      value = *reinterpret_cast<const uint4 *>(source + r * depth + k0 + col);
    *reinterpret_cast<uint4 *>(&tile[r][col]) = value;
  }
}

struct ExpertGemmParams {
  const uint16_t *rows;          // grouped rows [*, depth], bf16
  const int64_t *counts;         // [experts] on the device
  int64_t experts, width, depth; // out [*, width] = rows . w[e]^T
  const uint16_t *first;         // weights [experts, width, depth], bf16
  const uint16_t *second;   // the up weights beside the gate (gate/up only)
  float *out;               // down: the rows' outputs
  uint16_t *hidden;         // gate/up: the SwiGLU, bf16
  float *keptGate, *keptUp; // gate/up: the pre-activations, or null
};

template <int kWeights> // 2: gate and up with the SwiGLU; 1: down
__global__ void __launch_bounds__(kExpertGemmThreads)
    expertGemmKernel(ExpertGemmParams p) {
  ExpertTile tile;
  if (!expertTile(p.counts, p.experts, blockIdx.x, tile))
    return; // the whole block: past the last tile
  int64_t col0 = int64_t(blockIdx.y) * kExpertTileCols;
  __shared__ __align__(16) TileRows a;
  __shared__ __align__(16) TileRows b[kWeights];
  const uint16_t *rows = p.rows + tile.firstRow * p.depth;
  const uint16_t *weights[2] = {p.first, p.second};
#pragma unroll
  for (int w = 0; w < kWeights; ++w)
    weights[w] += (tile.expert * p.width + col0) * p.depth;
  int64_t columns =
      p.width - col0 < kExpertTileCols ? p.width - col0 : kExpertTileCols;

  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int warpRow = (warp / 2) * 32, warpCol = (warp % 2) * 32;
  float acc[kWeights][2][4][4] = {};
  for (int64_t k0 = 0; k0 < p.depth; k0 += kExpertTileK) {
    loadTile(a, rows, tile.rows, p.depth, k0);
#pragma unroll
    for (int w = 0; w < kWeights; ++w)
      loadTile(b[w], weights[w], columns, p.depth, k0);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kExpertTileK; kk += 16) {
      uint32_t fragA[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int reg = 0; reg < 4; ++reg) {
          int row, k;
          mmaAPosition(lane, reg, 0, row, k);
          fragA[mi][reg] = pair(&a[warpRow + mi * 16 + row][kk + k]);
        }
#pragma unroll
      for (int w = 0; w < kWeights; ++w)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          uint32_t fragB[2];
#pragma unroll
          for (int reg = 0; reg < 2; ++reg) {
            int k, col;
            mmaBPosition(lane, reg, 0, k, col);
            fragB[reg] = pair(&b[w][warpCol + ni * 8 + col][kk + k]);
          }
#pragma unroll
          for (int mi = 0; mi < 2; ++mi)
            mma16816(acc[w][mi][ni], fragA[mi], fragB[0], fragB[1]);
        }
    }
    __syncthreads(); // before the next step overwrites the tiles
  }

#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        int row, col;
        tileElement(warp, lane, mi, ni, i, row, col);
        if (row >= tile.rows || col >= columns)
          continue;
        int64_t at = (tile.firstRow + row) * p.width + col0 + col;
        if constexpr (kWeights == 2)
          storeGateUp(acc[0][mi][ni][i], acc[1][mi][ni][i], at, p.hidden,
                      p.keptGate, p.keptUp);
        else
          p.out[at] = acc[0][mi][ni][i];
      }
}
} // namespace

cudaError_t expertGateUp(const uint16_t *rows, const int64_t *counts,
                         int64_t experts, int64_t d, int64_t f,
                         const uint16_t *gate, const uint16_t *up,
                         uint16_t *hidden, float *keptGate, float *keptUp,
                         const LaunchShape &shape, cudaStream_t stream) {
  ExpertGemmParams p{rows, counts,  experts, f,        d,     gate,
                     up,   nullptr, hidden,  keptGate, keptUp};
  return launchWith(shape, stream, expertGemmKernel<2>, p);
}

cudaError_t expertDown(const uint16_t *hidden, const int64_t *counts,
                       int64_t experts, int64_t f, int64_t d,
                       const uint16_t *down, float *out,
                       const LaunchShape &shape, cudaStream_t stream) {
  ExpertGemmParams p{hidden,  counts, experts, d,       f,      down,
                     nullptr, out,    nullptr, nullptr, nullptr};
  return launchWith(shape, stream, expertGemmKernel<1>, p);
}

} // namespace moert::cuda
