//===- ExpertTiles.h - the tiles of the experts' tiled GEMMs ----*- C++ -*-===//
//
// The arithmetic of kernels/ExpertGemm.cu. Its grid is sized on the host
// from a bound on the grouped rows (no counts come back from the device):
// each block finds its expert and rows from the device's counts, and blocks
// past the last tile return. Within a block, warps multiply with the
// m16n8k16 bf16 tensor-core instruction, whose operands sit in the lanes as
// the PTX ISA lays them out ("Matrix Fragments for mma.m16n8k16").
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_MATH_EXPERTTILES_H
#define MOERT_CUDA_MATH_EXPERTTILES_H

#include "runtime/cuda/math/Activations.h"
#include "runtime/cuda/math/HostDevice.h"
#include "runtime/cuda/math/Storage.h"

#include <cstdint>

namespace moert::cuda_math {

constexpr int kExpertTileRows = 64; // grouped rows per block
constexpr int kExpertTileCols = 64; // output columns per block
constexpr int kExpertTileK = 32;    // products' depth per shared-memory step
constexpr int kExpertGemmThreads = 128; // 4 warps, 2 x 2 of 32 x 32
/// A row of a tile in shared memory: 8 bf16 of padding keep the lanes of a
/// fragment load on distinct banks.
constexpr int kExpertTileStride = kExpertTileK + 8;

/// Rows [firstRow, firstRow + rows) of expert `expert`'s grouped rows.
struct ExpertTile {
  int64_t expert = 0, firstRow = 0, rows = 0;
};

/// Tile `tile` of the grouped rows, counts [experts] rows per expert in
/// expert order, each expert cut into tiles of kExpertTileRows from its
/// first row; false past the last tile.
MOEC_HD inline bool expertTile(const int64_t *counts, int64_t experts,
                               int64_t tile, ExpertTile &found) {
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    int64_t rows = counts[e];
    int64_t tiles = (rows + kExpertTileRows - 1) / kExpertTileRows;
    if (tile < tiles) {
      int64_t begin = tile * kExpertTileRows;
      found.expert = e;
      found.firstRow = first + begin;
      found.rows =
          rows - begin < kExpertTileRows ? rows - begin : kExpertTileRows;
      return true;
    }
    tile -= tiles;
    first += rows;
  }
  return false;
}

/// The most tiles `rows` grouped rows over `experts` experts make:
/// sum ceil(c_e / T) <= (sum c_e + experts (T - 1)) / T.
MOEC_HD inline int64_t expertTileBound(int64_t rows, int64_t experts) {
  return (rows + experts * (kExpertTileRows - 1)) / kExpertTileRows;
}

/// Where lane `lane`'s register `reg` (0-3), half `half` (0-1) of the A
/// operand (16 x 16, row-major) sits: row and column (k).
MOEC_HD inline void mmaAPosition(int lane, int reg, int half, int &row,
                                 int &k) {
  row = lane / 4 + (reg & 1) * 8;
  k = (lane % 4) * 2 + (reg >> 1) * 8 + half;
}
/// The B operand (16 x 8, read column by column): register `reg` (0-1).
MOEC_HD inline void mmaBPosition(int lane, int reg, int half, int &k,
                                 int &col) {
  k = (lane % 4) * 2 + reg * 8 + half;
  col = lane / 4;
}
/// The fp32 accumulator (16 x 8): element `i` (0-3).
MOEC_HD inline void mmaCPosition(int lane, int i, int &row, int &col) {
  row = lane / 4 + (i >> 1) * 8;
  col = (lane % 4) * 2 + (i & 1);
}

/// A tile element's place within its block's 64 x 64 output: warp `warp`
/// (0-3) holds 32 x 32 of it as 2 x 4 accumulators of 16 x 8.
MOEC_HD inline void tileElement(int warp, int lane, int mi, int ni, int i,
                                int &row, int &col) {
  mmaCPosition(lane, i, row, col);
  row += (warp / 2) * 32 + mi * 16;
  col += (warp % 2) * 32 + ni * 8;
}

/// What the gate/up GEMM's epilogue writes for one element: the SwiGLU
/// rounded to bf16 (the down GEMM's input) and, when the forward keeps
/// them, the pre-activations.
MOEC_HD inline void storeGateUp(float gate, float up, int64_t at,
                                uint16_t *hidden, float *keptGate,
                                float *keptUp) {
  if (keptGate) {
    keptGate[at] = gate;
    keptUp[at] = up;
  }
  hidden[at] = floatToBf16(swiglu(gate, up));
}

} // namespace moert::cuda_math

#endif // MOERT_CUDA_MATH_EXPERTTILES_H
