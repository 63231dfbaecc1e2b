//===- Sampling.h - the next token from logits ------------------*- C++ -*-===//
//
// Temperature, then top-k, then top-p (nucleus), as transformers' logits
// warpers apply them; temperature 0 is greedy (argmax, ties to the lower
// id). A draw is element `step` of a Philox stream keyed by the seed and
// the sequence's index, so a sequence's tokens depend neither on the thread
// count nor on the other sequences of the batch.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_GENERATE_SAMPLING_H
#define MOERT_GENERATE_SAMPLING_H

#include <cstdint>
#include <utility>
#include <vector>

namespace moert {

struct SamplingOptions {
  double temperature = 0; // 0: greedy
  int64_t topK = 0;       // 0: every token
  double topP = 1.0;      // 1: every token
  uint64_t seed = 0;
};

/// The tokens a draw can give and their probabilities, most probable first
/// (ties to the lower id); one token with probability 1 when greedy.
std::vector<std::pair<int32_t, double>>
samplingDistribution(const float *logits, int64_t vocab,
                     const SamplingOptions &options);

/// The token sequence `sequence` takes at its generation step `step`: the
/// draw walks samplingDistribution's tokens, or, when neither top-k nor
/// top-p cuts the vocabulary, the whole softmax in id order.
int32_t sampleToken(const float *logits, int64_t vocab,
                    const SamplingOptions &options, int64_t sequence,
                    int64_t step);

} // namespace moert

#endif // MOERT_GENERATE_SAMPLING_H
