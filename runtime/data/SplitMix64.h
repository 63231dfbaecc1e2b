//===- SplitMix64.h - the sampler's shuffle generator -----------*- C++ -*-===//
//
// splitmix64 (Steele, Lea, Flood 2014; the public-domain reference by
// Vigna) and an unbiased bounded draw by rejection. Spelled out rather than
// taken from <random>: std::shuffle and the std distributions differ
// between standard libraries, and a resumed run must draw the same batches
// anywhere.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_SPLITMIX64_H
#define MOERT_DATA_SPLITMIX64_H

#include <cstdint>
#include <utility>
#include <vector>

namespace moert::data {

/// The splitmix64 output function: a bijective 64-bit mix.
inline uint64_t splitmix64Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class SplitMix64 {
public:
  explicit SplitMix64(uint64_t state) : state_(state) {}
  uint64_t next() { return splitmix64Mix(state_ += 0x9e3779b97f4a7c15ull); }
  /// Uniform in [0, bound), bound > 0: draws below 2^64 mod bound are
  /// rejected so every residue is equally likely.
  uint64_t below(uint64_t bound) {
    uint64_t threshold = (0 - bound) % bound;
    for (;;)
      if (uint64_t draw = next(); draw >= threshold)
        return draw % bound;
  }

private:
  uint64_t state_;
};

/// Fisher-Yates: for i = n-1 down to 1, swap element i with element
/// below(i + 1).
template <typename T> void shuffle(std::vector<T> &items, SplitMix64 &random) {
  for (size_t i = items.size(); i > 1; --i)
    std::swap(items[i - 1], items[random.below(i)]);
}

} // namespace moert::data

#endif // MOERT_DATA_SPLITMIX64_H
