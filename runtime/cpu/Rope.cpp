//===- Rope.cpp - rotary position embedding -------------------------------===//
//
// Angles are computed in fp32 exactly as Hugging Face's LlamaRotaryEmbedding
// does (inv_freq in fp32, pos * inv_freq in fp32, cos/sin in fp32), so long
// positions lose the same precision there and here. With the default
// positions 0..S-1 the cos/sin table depends only on the shape and theta,
// so each thread keeps the last one it built: a training step applies rope
// and its inverse a few times per layer.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/StoredTile.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moert::cpu {
namespace {

/// cos and sin per (row, i) for i < headDim / 2.
struct RopeTable {
  int64_t rows = 0, headDim = 0;
  double theta = 0;
  std::vector<float> cosines, sines;
};

void fillTable(RopeTable &table, int64_t rows, int64_t headDim, double theta,
               const float *positions) {
  int64_t half = headDim / 2;
  std::vector<float> inverseFrequency(half);
  for (int64_t i = 0; i < half; ++i)
    inverseFrequency[i] =
        1.0f / std::pow(float(theta), float(2 * i) / float(headDim));
  table.rows = rows;
  table.headDim = headDim;
  table.theta = theta;
  table.cosines.resize(rows * half);
  table.sines.resize(rows * half);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float position = positions ? positions[r] : float(r);
    for (int64_t i = 0; i < half; ++i) {
      float angle = position * inverseFrequency[i];
      table.cosines[r * half + i] = std::cos(angle);
      table.sines[r * half + i] = std::sin(angle);
    }
  }
}

/// The table of positions 0..seq-1, rebuilt only when the shape changes.
const RopeTable &defaultTable(int64_t seq, int64_t headDim, double theta) {
  thread_local RopeTable table;
  if (table.rows != seq || table.headDim != headDim || table.theta != theta)
    fillTable(table, seq, headDim, theta, nullptr);
  return table;
}

/// Rotates the heads of tokens [begin, end), x and y pointing at token
/// `begin`; the transpose of a rotation by `angle` is the rotation by
/// -angle, so `inverse` negates the sines.
MOERT_ISA_CLONES
void rotateTokens(const float *x, float *y, int64_t begin, int64_t end,
                  int64_t seq, int64_t heads, int64_t headDim,
                  const RopeTable &table, bool perToken, bool inverse) {
  int64_t half = headDim / 2;
  float sign = inverse ? -1.0f : 1.0f;
  for (int64_t index = begin; index < end; ++index) {
    int64_t tableRow = perToken ? index : index % seq;
    const float *c = table.cosines.data() + tableRow * half;
    const float *sn = table.sines.data() + tableRow * half;
    for (int64_t h = 0; h < heads; ++h) {
      const float *head = x + ((index - begin) * heads + h) * headDim;
      float *out = y + ((index - begin) * heads + h) * headDim;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        float first = head[i], second = head[i + half], s = sn[i] * sign;
        out[i] = first * c[i] - second * s;
        out[i + half] = second * c[i] + first * s;
      }
    }
  }
}

struct RopeScratch;

/// rope into out stored as fp32 or bf16.
template <typename O>
void rotate(const float *x, O *out, int64_t batch, int64_t seq, int64_t heads,
            int64_t headDim, double theta, const void *positions,
            DType positionsType, bool inverse) {
  RopeTable perToken;
  if (positions) {
    std::vector<float> at(batch * seq);
    for (int64_t i = 0; i < batch * seq; ++i)
      at[i] = positionsType == DType::kI64
                  ? float(static_cast<const int64_t *>(positions)[i])
                  : float(static_cast<const int32_t *>(positions)[i]);
    fillTable(perToken, batch * seq, headDim, theta, at.data());
  }
  const RopeTable &table =
      positions ? perToken : defaultTable(seq, headDim, theta);
  constexpr int64_t kTokensPerTask = 16;
  int64_t tokens = batch * seq, width = heads * headDim;
  int64_t tasks = (tokens + kTokensPerTask - 1) / kTokensPerTask;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks; ++t) {
    int64_t begin = t * kTokensPerTask;
    int64_t end = std::min(tokens, begin + kTokensPerTask);
    computeStored<RopeScratch>(
        out + begin * width, (end - begin) * width, [&](float *y) {
          rotateTokens(x + begin * width, y, begin, end, seq, heads, headDim,
                       table, positions != nullptr, inverse);
        });
  }
}
} // namespace

void rope(const float *x, float *out, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, const void *positions,
          DType positionsType, bool inverse) {
  rotate(x, out, batch, seq, heads, headDim, theta, positions, positionsType,
         inverse);
}

void ropeToBf16(const float *x, uint16_t *out, int64_t batch, int64_t seq,
                int64_t heads, int64_t headDim, double theta,
                const void *positions, DType positionsType, bool inverse) {
  rotate(x, out, batch, seq, heads, headDim, theta, positions, positionsType,
         inverse);
}

} // namespace moert::cpu
