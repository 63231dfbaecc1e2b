//===- CachedAttention.cpp - attention of new rows over the KV caches -----===//
//
// Decoding reads one query row per sequence against every cached row before
// it, so the work is a few dot products per cached row and the time goes
// into reading the cache: one task per (sequence, KV head) reads each cached
// key and value row once for all the query heads that share it and all the
// task's query rows. Each output row is summed in a fixed order by one
// task, so the result does not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Scratch.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace moert::cpu {
namespace {
struct CachedScratch;

/// `value` rounded to bf16 (nearest even) and widened back; finite inputs.
MOERT_ISA_INLINE float roundedToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits = (bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff0000u;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

struct CacheShape {
  int64_t capacity, heads, kvHeads, headDim, rows;
  float scale;
  bool bf16;
};

/// The query rows `rows` of sequence b's query heads [firstHead, +group)
/// over cache rows 0 .. position (each row's own).
MOERT_ISA_CLONES
void attendGroup(const CacheShape &s, const float *q, const int32_t *positions,
                 const float *keys, const float *values, int64_t kvHead,
                 float *out) {
  int64_t group = s.heads / s.kvHeads, dim = s.headDim;
  int64_t qStride = s.heads * dim, kvStride = s.kvHeads * dim;
  float *scratch = threadScratch<float, CachedScratch, 0>(
      s.capacity + 2 * dim);
  float *scores = scratch, *query = scratch + s.capacity,
        *sum = query + dim;
  for (int64_t t = 0; t < s.rows; ++t) {
    int64_t position = positions[t];
    for (int64_t g = 0; g < group; ++g) {
      int64_t head = kvHead * group + g;
      float *o = out + t * qStride + head * dim;
      if (position < 0) {
        std::fill(o, o + dim, 0.0f);
        continue;
      }
      const float *qRow = q + t * qStride + head * dim;
      for (int64_t i = 0; i < dim; ++i)
        query[i] = (s.bf16 ? roundedToBf16(qRow[i]) : qRow[i]) * s.scale;
      float highest = -INFINITY;
      for (int64_t j = 0; j <= position; ++j) {
        const float *k = keys + j * kvStride + kvHead * dim;
        float dot = 0;
        if (s.bf16) {
#pragma omp simd reduction(+ : dot)
          for (int64_t i = 0; i < dim; ++i)
            dot += query[i] * roundedToBf16(k[i]);
        } else {
#pragma omp simd reduction(+ : dot)
          for (int64_t i = 0; i < dim; ++i)
            dot += query[i] * k[i];
        }
        scores[j] = dot;
        highest = std::max(highest, dot);
      }
      float total = 0;
      for (int64_t j = 0; j <= position; ++j) {
        scores[j] = std::exp(scores[j] - highest);
        total += scores[j];
      }
      std::fill(sum, sum + dim, 0.0f);
      for (int64_t j = 0; j <= position; ++j) {
        const float *v = values + j * kvStride + kvHead * dim;
        float p = scores[j] / total;
        if (s.bf16) {
          p = roundedToBf16(p);
#pragma omp simd
          for (int64_t i = 0; i < dim; ++i)
            sum[i] += p * roundedToBf16(v[i]);
        } else {
#pragma omp simd
          for (int64_t i = 0; i < dim; ++i)
            sum[i] += p * v[i];
        }
      }
      std::copy(sum, sum + dim, o);
    }
  }
}
} // namespace

absl::Status cachedAttention(const float *q, const int32_t *positions,
                             const float *keys, const float *values,
                             int64_t batch, int64_t rows, int64_t capacity,
                             int64_t heads, int64_t kvHeads, int64_t headDim,
                             double scale, bool bf16, float *out) {
  for (int64_t i = 0; i < batch * rows; ++i)
    if (positions[i] >= capacity)
      return absl::OutOfRangeError(
          absl::StrCat("position ", positions[i], " of sequence ", i / rows,
                       " is past the cache capacity ", capacity));
  CacheShape s{capacity, heads, kvHeads, headDim, rows, float(scale), bf16};
  int64_t kvStride = kvHeads * headDim;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < kvHeads; ++h)
      attendGroup(s, q + b * rows * heads * headDim, positions + b * rows,
                  keys + b * capacity * kvStride,
                  values + b * capacity * kvStride, h,
                  out + b * rows * heads * headDim);
  return absl::OkStatus();
}

} // namespace moert::cpu
