//===- AttentionGrad.cpp - backward of grouped-query attention ------------===//
//
// One (batch, query head) per task, query row by query row: the row's
// softmax is recomputed from q and k, and the row adds its share to that
// head's dk and dv. Each query head writes its own partial dk and dv, added
// afterwards in head order, so nothing depends on the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMath.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace moert::cpu {
namespace {
float dot(const float *a, const float *b, int64_t n) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t t = 0; t < n; ++t)
    sum += a[t] * b[t];
  return sum;
}

/// y += alpha x.
void axpy(float alpha, const float *x, float *y, int64_t n) {
#pragma omp simd
  for (int64_t t = 0; t < n; ++t)
    y[t] += alpha * x[t];
}
} // namespace

void attentionGrad(const float *q, const float *k, const float *v,
                   const float *dOut, int64_t batch, int64_t seq,
                   int64_t heads, int64_t kvHeads, int64_t headDim,
                   bool causal, double scale, float *dq, float *dk,
                   float *dv) {
  int64_t group = heads / kvHeads;
  int64_t qStride = heads * headDim, kvStride = kvHeads * headDim;
  // Per (batch, query head) dk and dv, [B, H, S, Dh], reduced over the group
  // at the end.
  std::vector<float> dkPartial(size_t(batch * heads * seq * headDim));
  std::vector<float> dvPartial(dkPartial.size());
  float alpha = float(scale);
#pragma omp parallel
  {
    // The head's keys and values packed contiguously: rows kvStride apart
    // (often a multiple of 4 KiB / kvHeads) alias in the L1 sets.
    std::vector<float> probs(seq), dprobs(seq);
    std::vector<float> keys(seq * headDim), values(seq * headDim);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h) {
        int64_t kvHead = h / group;
        for (int64_t j = 0; j < seq; ++j) {
          int64_t offset = (b * seq + j) * kvStride + kvHead * headDim;
          std::copy(k + offset, k + offset + headDim,
                    keys.data() + j * headDim);
          std::copy(v + offset, v + offset + headDim,
                    values.data() + j * headDim);
        }
        float *dKeys = dkPartial.data() + (b * heads + h) * seq * headDim;
        float *dValues = dvPartial.data() + (b * heads + h) * seq * headDim;
        std::fill(dKeys, dKeys + seq * headDim, 0.0f);
        std::fill(dValues, dValues + seq * headDim, 0.0f);
        for (int64_t i = 0; i < seq; ++i) {
          const float *query = q + (b * seq + i) * qStride + h * headDim;
          const float *grad = dOut + (b * seq + i) * qStride + h * headDim;
          float *dQuery = dq + (b * seq + i) * qStride + h * headDim;
          int64_t visible = causal ? i + 1 : seq;
          float best = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < visible; ++j) {
            probs[j] = dot(query, keys.data() + j * headDim, headDim) * alpha;
            best = std::max(best, probs[j]);
          }
          double total = 0;
#pragma omp simd reduction(+ : total)
          for (int64_t j = 0; j < visible; ++j) {
            probs[j] = vectorExp(probs[j] - best);
            total += probs[j];
          }
          // P = softmax(S); dS = P * (dP - <P, dP>) with dP = dO v^T.
          float inverse = float(1.0 / total);
          double projection = 0;
          for (int64_t j = 0; j < visible; ++j) {
            probs[j] *= inverse;
            dprobs[j] = dot(grad, values.data() + j * headDim, headDim);
            projection += double(probs[j]) * dprobs[j];
          }
          std::fill(dQuery, dQuery + headDim, 0.0f);
          for (int64_t j = 0; j < visible; ++j) {
            float dScore = probs[j] * (dprobs[j] - float(projection)) * alpha;
            axpy(dScore, keys.data() + j * headDim, dQuery, headDim);
            axpy(dScore, query, dKeys + j * headDim, headDim);
            axpy(probs[j], grad, dValues + j * headDim, headDim);
          }
        }
      }
#pragma omp for collapse(3) schedule(static)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t j = 0; j < seq; ++j)
        for (int64_t kvHead = 0; kvHead < kvHeads; ++kvHead) {
          float *dKey = dk + (b * seq + j) * kvStride + kvHead * headDim;
          float *dValue = dv + (b * seq + j) * kvStride + kvHead * headDim;
          std::fill(dKey, dKey + headDim, 0.0f);
          std::fill(dValue, dValue + headDim, 0.0f);
          for (int64_t h = kvHead * group; h < (kvHead + 1) * group; ++h) {
            int64_t offset = ((b * heads + h) * seq + j) * headDim;
            axpy(1.0f, dkPartial.data() + offset, dKey, headDim);
            axpy(1.0f, dvPartial.data() + offset, dValue, headDim);
          }
        }
  }
}

} // namespace moert::cpu
