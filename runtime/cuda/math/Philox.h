//===- Philox.h - the counter-based random streams, host and device -*- C++ -*-===//
//
// runtime/checkpoint/Init.cpp's streams, element by element: Philox4x32-10
// keyed by the stream's 64-bit key, the element index in the counter's low
// words and the seed in its high ones. Element i depends on nothing else,
// so a kernel thread draws exactly the element the CPU draws.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_MATH_PHILOX_H
#define MOERT_CUDA_MATH_PHILOX_H

#include "runtime/cuda/math/HostDevice.h"

#include <math.h>
#include <stdint.h>

namespace moert::cuda_math {

struct PhiloxBlock {
  uint32_t x[4];
};

MOEC_HD inline PhiloxBlock philox(uint64_t index, uint64_t seed,
                                  uint64_t key) {
  uint32_t c[4] = {uint32_t(index), uint32_t(index >> 32), uint32_t(seed),
                   uint32_t(seed >> 32)};
  uint32_t k[2] = {uint32_t(key), uint32_t(key >> 32)};
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c[0], p1 = uint64_t(0xCD9E8D57u) * c[2];
    uint32_t next[4] = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1),
                        uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
    for (int i = 0; i < 4; ++i)
      c[i] = next[i];
    k[0] += 0x9E3779B9u;
    k[1] += 0xBB67AE85u;
  }
  return {{c[0], c[1], c[2], c[3]}};
}

/// (0, 1] from 53 bits of two words: never 0, so log() is finite.
MOEC_HD inline double openUniform(uint32_t a, uint32_t b) {
  uint64_t bits = (uint64_t(a) << 21) ^ uint64_t(b >> 11);
  bits &= (uint64_t(1) << 53) - 1;
  return (double(bits) + 1.0) / 9007199254740992.0;
}

/// Element `index` of the standard normal stream (seed, key): Box-Muller on
/// one block.
MOEC_HD inline double standardNormalAt(uint64_t seed, uint64_t key,
                                       uint64_t index) {
  PhiloxBlock r = philox(index, seed, key);
  double radius = sqrt(-2.0 * log(openUniform(r.x[0], r.x[1])));
  double angle = 2.0 * 3.14159265358979323846 * openUniform(r.x[2], r.x[3]);
  return radius * cos(angle);
}

/// Element `index` of the uniform [0, 1) stream: 24 bits.
MOEC_HD inline float uniformAt(uint64_t seed, uint64_t key, uint64_t index) {
  return float(philox(index, seed, key).x[0] >> 8) * (1.0f / 16777216.0f);
}

} // namespace moert::cuda_math

#endif // MOERT_CUDA_MATH_PHILOX_H
