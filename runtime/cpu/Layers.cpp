//===- Layers.cpp - norm, rotary, attention, elementwise, embedding -------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/Kernels.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace moert::cpu {
namespace {
/// Element i of a weight as fp32.
inline float at(Weight w, int64_t i) {
  switch (w.dtype) {
  case DType::kBF16:
    return bf16ToFloat(static_cast<const uint16_t *>(w.data)[i]);
  case DType::kF16:
    return f16ToFloat(static_cast<const uint16_t *>(w.data)[i]);
  default:
    return static_cast<const float *>(w.data)[i];
  }
}
} // namespace

void rmsNorm(const float *x, Weight w, int64_t rows, int64_t d, double eps,
             float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x + r * d;
    float *out = y + r * d;
    double sum = 0;
    for (int64_t i = 0; i < d; ++i)
      sum += double(in[i]) * in[i];
    float inverse = float(1.0 / std::sqrt(sum / d + eps));
    for (int64_t i = 0; i < d; ++i)
      out[i] = in[i] * inverse * at(w, i);
  }
}

void rope(float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, const void *positions,
          DType positionsType) {
  int64_t half = headDim / 2;
  // inv_freq as Hugging Face computes it, in fp32.
  std::vector<float> inverseFrequency(half);
  for (int64_t i = 0; i < half; ++i)
    inverseFrequency[i] =
        1.0f / std::pow(float(theta), float(2 * i) / float(headDim));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      int64_t index = b * seq + s;
      float position =
          !positions ? float(s)
          : positionsType == DType::kI64
              ? float(static_cast<const int64_t *>(positions)[index])
              : float(static_cast<const int32_t *>(positions)[index]);
      float *row = x + index * heads * headDim;
      for (int64_t i = 0; i < half; ++i) {
        float angle = position * inverseFrequency[i];
        float c = std::cos(angle), sn = std::sin(angle);
        for (int64_t h = 0; h < heads; ++h) {
          float *head = row + h * headDim;
          float a = head[i], bb = head[i + half];
          head[i] = a * c - bb * sn;
          head[i + half] = bb * c + a * sn;
        }
      }
    }
}

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

void add(const float *a, const float *b, int64_t n, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

void mul(const float *a, const float *b, int64_t n, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] * b[i];
}

void silu(const float *x, int64_t n, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void swiglu(const float *gate, const float *up, int64_t n, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

absl::Status embedding(Weight table, int64_t vocab, int64_t d,
                       const int32_t *ids, int64_t n, float *out) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", ids[i], " at position ", i,
                       " is outside the vocabulary [0, ", vocab, ")"));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    int64_t base = int64_t(ids[i]) * d;
    if (table.dtype == DType::kF32) {
      std::memcpy(out + i * d, static_cast<const float *>(table.data) + base,
                  d * sizeof(float));
      continue;
    }
    for (int64_t j = 0; j < d; ++j)
      out[i * d + j] = at(table, base + j);
  }
  return absl::OkStatus();
}

} // namespace moert::cpu
