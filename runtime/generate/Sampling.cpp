//===- Sampling.cpp - the next token from logits --------------------------===//

#include "runtime/generate/Sampling.h"

#include "runtime/checkpoint/Init.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace moert {
namespace {
int32_t argmax(const float *logits, int64_t vocab) {
  return int32_t(std::max_element(logits, logits + vocab) - logits);
}

/// The token `draw` (in [0, 1)) picks from the softmax of logits /
/// temperature over the whole vocabulary, cumulated in id order: nothing is
/// cut, so nothing needs sorting (a sort of the vocabulary per token cost
/// about as much as a decode step).
int32_t drawInIdOrder(const float *logits, int64_t vocab, double temperature,
                      double draw) {
  double highest = logits[argmax(logits, vocab)] / temperature, total = 0;
  std::vector<double> weights(vocab);
  for (int64_t id = 0; id < vocab; ++id)
    total += weights[id] = std::exp(logits[id] / temperature - highest);
  double cumulative = 0, target = draw * total;
  for (int64_t id = 0; id < vocab; ++id) {
    cumulative += weights[id];
    if (target < cumulative)
      return int32_t(id);
  }
  return argmax(logits, vocab); // rounding left the sum just under target
}
} // namespace

std::vector<std::pair<int32_t, double>>
samplingDistribution(const float *logits, int64_t vocab,
                     const SamplingOptions &options) {
  if (options.temperature <= 0)
    return {{argmax(logits, vocab), 1.0}};
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto higher = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  int64_t kept = options.topK > 0 ? std::min(options.topK, vocab) : vocab;
  std::partial_sort(order.begin(), order.begin() + kept, order.end(), higher);
  order.resize(kept);

  // Softmax of logits / temperature over the kept tokens, in double.
  double highest = logits[order[0]] / options.temperature, total = 0;
  std::vector<std::pair<int32_t, double>> tokens;
  for (int32_t id : order) {
    double weight = std::exp(logits[id] / options.temperature - highest);
    tokens.emplace_back(id, weight);
    total += weight;
  }
  // Nucleus: the most probable tokens until their mass reaches top_p.
  double mass = 0;
  size_t nucleus = 0;
  while (nucleus < tokens.size() &&
         (nucleus == 0 || mass < options.topP * total)) {
    mass += tokens[nucleus].second;
    ++nucleus;
  }
  tokens.resize(nucleus);
  for (auto &token : tokens)
    token.second /= mass;
  return tokens;
}

int32_t sampleToken(const float *logits, int64_t vocab,
                    const SamplingOptions &options, int64_t sequence,
                    int64_t step) {
  if (options.temperature <= 0)
    return argmax(logits, vocab);
  static const uint64_t kKey = keyOf("generate.sample");
  uint64_t bits = randomBitsAt(options.seed, kKey ^ keyOf(std::to_string(sequence)),
                               uint64_t(step));
  double draw = double(bits >> 11) * 0x1.0p-53; // uniform in [0, 1)
  if (options.topK <= 0 && options.topP >= 1)
    return drawInIdOrder(logits, vocab, options.temperature, draw);
  std::vector<std::pair<int32_t, double>> tokens =
      samplingDistribution(logits, vocab, options);
  double cumulative = 0;
  for (const auto &[id, probability] : tokens) {
    cumulative += probability;
    if (draw < cumulative)
      return id;
  }
  return tokens.back().first; // rounding left the sum just under 1
}

} // namespace moert
