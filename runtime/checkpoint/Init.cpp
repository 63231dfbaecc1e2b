//===- Init.cpp - counter-based random initialisation ---------------------===//

#include "runtime/checkpoint/Init.h"

#include <algorithm>
#include <cmath>

namespace moert {
namespace {
// Below this a parallel region costs more than it saves.
constexpr int64_t kParallelMin = int64_t(1) << 14;

/// Counter of element i: its index in the low words, the seed in the high
/// ones, so streams of different seeds never overlap.
std::array<uint32_t, 4> counterOf(uint64_t index, uint64_t seed) {
  return {uint32_t(index), uint32_t(index >> 32), uint32_t(seed),
          uint32_t(seed >> 32)};
}

std::array<uint32_t, 2> keyWords(uint64_t key) {
  return {uint32_t(key), uint32_t(key >> 32)};
}

/// (0, 1]: never 0, so log() is finite.
double openUniform(uint32_t a, uint32_t b) {
  uint64_t bits = (uint64_t(a) << 21) ^ uint64_t(b >> 11); // 53 bits
  bits &= (uint64_t(1) << 53) - 1;
  return (double(bits) + 1.0) / 9007199254740992.0;
}
} // namespace

uint64_t keyOf(std::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> ctr,
                                   std::array<uint32_t, 2> key) {
  constexpr uint32_t kM0 = 0xD2511F53, kM1 = 0xCD9E8D57;
  constexpr uint32_t kW0 = 0x9E3779B9, kW1 = 0xBB67AE85;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(kM0) * ctr[0], p1 = uint64_t(kM1) * ctr[2];
    ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ key[0], uint32_t(p1),
           uint32_t(p0 >> 32) ^ ctr[3] ^ key[1], uint32_t(p0)};
    key = {key[0] + kW0, key[1] + kW1};
  }
  return ctr;
}

double standardNormalAt(uint64_t seed, uint64_t key, uint64_t index) {
  auto r = philox4x32(counterOf(index, seed), keyWords(key));
  // Box-Muller on one block per element keeps element i self-contained.
  double radius = std::sqrt(-2.0 * std::log(openUniform(r[0], r[1])));
  double angle = 2.0 * M_PI * openUniform(r[2], r[3]);
  return radius * std::cos(angle);
}

uint64_t randomBitsAt(uint64_t seed, uint64_t key, uint64_t index) {
  auto r = philox4x32(counterOf(index, seed), keyWords(key));
  return (uint64_t(r[0]) << 32) | r[1];
}

void fillNormal(float *out, int64_t n, float mean, float std, uint64_t seed,
                uint64_t key, int64_t firstIndex) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    out[i] = float(mean + std * standardNormalAt(seed, key,
                                                 uint64_t(firstIndex + i)));
}

void fillUniform(float *out, int64_t n, uint64_t seed, uint64_t key,
                 int64_t firstIndex) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    auto r =
        philox4x32(counterOf(uint64_t(firstIndex + i), seed), keyWords(key));
    out[i] = float(r[0] >> 8) * (1.0f / 16777216.0f); // 24 bits: [0, 1)
  }
}

void fillConstant(float *out, int64_t n, float value) {
  if (n > 0)
    std::fill(out, out + n, value);
}

} // namespace moert
