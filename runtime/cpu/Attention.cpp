//===- Attention.cpp - causal grouped-query attention ---------------------===//
//
// One query row at a time: each thread keeps a row of S scores and a
// head-width accumulator, never an S x S matrix. A row is computed by one
// thread start to end, so the result does not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace moert::cpu {

void attention(const float *q, const float *k, const float *v, int64_t batch,
               int64_t seq, int64_t heads, int64_t kvHeads, int64_t headDim,
               bool causal, double scale, float *out) {
  int64_t group = heads / kvHeads;
  int64_t qStride = heads * headDim, kvStride = kvHeads * headDim;
#pragma omp parallel
  {
    std::vector<float> scores(seq);
    std::vector<double> accumulator(headDim);
#pragma omp for collapse(3) schedule(static)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < seq; ++i) {
          const float *query = q + (b * seq + i) * qStride + h * headDim;
          const float *keys = k + b * seq * kvStride + (h / group) * headDim;
          const float *values = v + b * seq * kvStride + (h / group) * headDim;
          int64_t visible = causal ? i + 1 : seq;
          float best = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < visible; ++j) {
            const float *key = keys + j * kvStride;
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int64_t t = 0; t < headDim; ++t)
              dot += query[t] * key[t];
            scores[j] = float(dot * scale);
            best = std::max(best, scores[j]);
          }
          double total = 0;
          for (int64_t j = 0; j < visible; ++j) {
            scores[j] = std::exp(scores[j] - best);
            total += scores[j];
          }
          std::fill(accumulator.begin(), accumulator.end(), 0.0);
          for (int64_t j = 0; j < visible; ++j) {
            const float *value = values + j * kvStride;
            for (int64_t t = 0; t < headDim; ++t)
              accumulator[t] += double(scores[j]) * value[t];
          }
          float *row = out + (b * seq + i) * qStride + h * headDim;
          for (int64_t t = 0; t < headDim; ++t)
            row[t] = float(accumulator[t] / total);
        }
  }
}

} // namespace moert::cpu
