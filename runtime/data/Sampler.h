//===- Sampler.h - training windows from a .tok file ------------*- C++ -*-===//
//
// The token stream (documents joined, EOS between them) is cut into windows
// of S + 1 ids with stride S: window i holds ids [iS, iS + S + 1), its first S
// are inputs and its last S the labels, so every id is an input (and a label)
// at most once per epoch. Each epoch visits all windows in an order shuffled
// by SplitMix64 keyed by (seed, epoch); state() and restore() make a resumed
// run draw exactly the batches the interrupted one would have.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_SAMPLER_H
#define MOERT_DATA_SAMPLER_H

#include "runtime/data/MappedTokenFile.h"

#include "absl/status/statusor.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace moert::data {

/// Ids [begin, end) of a file.
struct TokenRange {
  int64_t begin = 0, end = 0;
};

/// A file's ids cut in two: validation is the last round(fraction * tokens)
/// ids, training the rest. Windows never straddle the cut.
struct TokenSplit {
  TokenRange train, validation;
};
TokenSplit splitTokens(int64_t tokens, double fraction);

struct SamplerOptions {
  int64_t seq = 0; // S; windows hold S + 1 ids
  uint64_t seed = 0;
  bool shuffle = true; // false: file order, as evaluation wants
  std::optional<TokenRange> range; // default: the whole file
};

/// Where a run stands: windows drawn so far in `epoch`.
struct SamplerState {
  int64_t epoch = 0;
  int64_t position = 0;
  bool operator==(const SamplerState &other) const {
    return epoch == other.epoch && position == other.position;
  }
};

class Sampler {
public:
  /// `file` must outlive the sampler. Fails when the range cannot hold one
  /// window.
  static absl::StatusOr<Sampler> create(const MappedTokenFile &file,
                                        const SamplerOptions &options);

  /// `batch` windows, row-major [batch, S + 1]; runs on into the next epoch
  /// (reshuffled) when this one is spent.
  std::vector<int32_t> next(int64_t batch);
  SamplerState state() const { return state_; }
  /// Fails (naming the field) unless 0 <= position <= windowCount().
  absl::Status restore(const SamplerState &state);

  int64_t windowCount() const { return int64_t(order_.size()); }
  int64_t seq() const { return options_.seq; }

private:
  Sampler() = default;
  /// The first id of the window at `position` of the current epoch.
  int64_t windowStart(int64_t position) const;
  void orderEpoch(int64_t epoch);

  const MappedTokenFile *file_ = nullptr;
  SamplerOptions options_;
  TokenRange range_;
  std::vector<int64_t> order_; // window indices of the current epoch
  SamplerState state_;
};

} // namespace moert::data

#endif // MOERT_DATA_SAMPLER_H
