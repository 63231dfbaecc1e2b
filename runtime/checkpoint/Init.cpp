//===- Init.cpp - counter-based random initialisation ---------------------===//

#include "runtime/checkpoint/Init.h"

#include <cmath>

namespace moert {
namespace {
/// Counter of element i: (i, key-independent stream word, seed) so streams
/// of different seeds never overlap.
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

void fillNormal(float *out, int64_t n, float mean, float std, uint64_t seed,
                uint64_t key, int64_t firstIndex) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    auto r = philox4x32(counterOf(uint64_t(firstIndex + i), seed), keyWords(key));
    // Box-Muller on one block per element keeps element i self-contained.
    double radius = std::sqrt(-2.0 * std::log(openUniform(r[0], r[1])));
    double angle = 2.0 * M_PI * openUniform(r[2], r[3]);
    out[i] = float(mean + std * radius * std::cos(angle));
  }
}

void fillUniform(float *out, int64_t n, uint64_t seed, uint64_t key,
                 int64_t firstIndex) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    auto r = philox4x32(counterOf(uint64_t(firstIndex + i), seed), keyWords(key));
    float value = float(r[0] >> 8) * (1.0f / 16777216.0f); // 24 bits: [0, 1)
    out[i] = value;
  }
}

} // namespace moert
