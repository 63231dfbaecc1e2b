//===- Init.h - counter-based random initialisation -------------*- C++ -*-===//
//
// Philox4x32-10 keyed by (seed, a key derived from the parameter's name) with
// the element index as counter: element i of a parameter depends on nothing
// else, so the same seed gives the same weights for any thread count, and a
// slice [a, b) filled alone equals elements a..b-1 of the whole.
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

/// out[i] ~ Normal(mean, std) for the stream (seed, key), elements
/// firstIndex .. firstIndex + n - 1.
void fillNormal(float *out, int64_t n, float mean, float std, uint64_t seed,
                uint64_t key, int64_t firstIndex = 0);

/// out[i] ~ Uniform[0, 1), same stream rules as fillNormal.
void fillUniform(float *out, int64_t n, uint64_t seed, uint64_t key,
                 int64_t firstIndex = 0);

} // namespace moert

#endif // MOERT_CHECKPOINT_INIT_H
