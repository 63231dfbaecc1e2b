//===- Init.h - counter-based random initialisation -------------*- C++ -*-===//
//
// Philox4x32-10 keyed by a 64-bit key (FNV-1a of the parameter's name), with
// (element index, seed) as the counter: the index fills the low half, the
// seed the high half, so streams of different seeds never share a block.
// Element i depends on nothing else, so the same seed gives the same weights
// for any thread count, and a slice [a, b) filled alone equals elements
// a..b-1 of the whole.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CHECKPOINT_INIT_H
#define MOERT_CHECKPOINT_INIT_H

#include <array>
#include <cstdint>
#include <string_view>

namespace moert {

/// FNV-1a 64 of a name: the key of a parameter's random stream.
uint64_t keyOf(std::string_view name);

/// The Philox4x32-10 block for `counter` under `key`.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter,
                                   std::array<uint32_t, 2> key);

/// Element `index` of the standard normal stream (seed, key).
double standardNormalAt(uint64_t seed, uint64_t key, uint64_t index);

/// Element `index` of the stream (seed, key) as 64 uniform random bits.
uint64_t randomBitsAt(uint64_t seed, uint64_t key, uint64_t index);

/// out[i] ~ Normal(mean, std) for the stream (seed, key), elements
/// firstIndex .. firstIndex + n - 1.
void fillNormal(float *out, int64_t n, float mean, float std, uint64_t seed,
                uint64_t key, int64_t firstIndex = 0);

/// out[i] ~ Uniform[0, 1), same stream rules as fillNormal.
void fillUniform(float *out, int64_t n, uint64_t seed, uint64_t key,
                 int64_t firstIndex = 0);

/// out[i] = value.
void fillConstant(float *out, int64_t n, float value);

} // namespace moert

#endif // MOERT_CHECKPOINT_INIT_H
