//===- Sampler.cpp - training windows from a .tok file --------------------===//

#include "runtime/data/Sampler.h"

#include "runtime/data/SplitMix64.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moert::data {

TokenSplit splitTokens(int64_t tokens, double fraction) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  int64_t validation = std::llround(fraction * double(tokens));
  return {{0, tokens - validation}, {tokens - validation, tokens}};
}

absl::StatusOr<Sampler> Sampler::create(const MappedTokenFile &file,
                                        const SamplerOptions &options) {
  TokenRange range = options.range.value_or(TokenRange{0, file.tokenCount()});
  if (options.seq <= 0)
    return absl::InvalidArgumentError(
        absl::StrCat("sequence length ", options.seq, " is not positive"));
  if (range.begin < 0 || range.end > file.tokenCount() ||
      range.begin > range.end)
    return absl::InvalidArgumentError(absl::StrCat(
        file.path(), ": token range [", range.begin, ", ", range.end,
        ") is not within the file's ", file.tokenCount(), " tokens"));
  int64_t tokens = range.end - range.begin;
  if (tokens < options.seq + 1)
    return absl::InvalidArgumentError(absl::StrCat(
        file.path(), ": ", tokens, " tokens cannot fill one window of ",
        options.seq + 1, " (sequence length ", options.seq, " + 1)"));
  Sampler sampler;
  sampler.file_ = &file;
  sampler.options_ = options;
  sampler.range_ = range;
  sampler.order_.resize(size_t((tokens - 1) / options.seq));
  sampler.orderEpoch(0);
  return sampler;
}

void Sampler::orderEpoch(int64_t epoch) {
  std::iota(order_.begin(), order_.end(), int64_t(0));
  if (options_.shuffle) {
    // Mixing the seed first keeps (seed, epoch + 1) and (seed + 1, epoch)
    // apart.
    SplitMix64 random(splitmix64Mix(options_.seed) + uint64_t(epoch));
    shuffle(order_, random);
  }
}

int64_t Sampler::windowStart(int64_t position) const {
  return range_.begin + order_[size_t(position)] * options_.seq;
}

std::vector<int32_t> Sampler::next(int64_t batch) {
  int64_t width = options_.seq + 1;
  std::vector<int32_t> ids(size_t(std::max<int64_t>(batch, 0) * width));
  for (int64_t b = 0; b < batch; ++b) {
    if (state_.position == windowCount()) {
      state_ = {state_.epoch + 1, 0};
      orderEpoch(state_.epoch);
    }
    file_->read(windowStart(state_.position++), width, &ids[size_t(b * width)]);
  }
  return ids;
}

absl::Status Sampler::restore(const SamplerState &state) {
  if (state.epoch < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("sampler state: epoch ", state.epoch, " is negative"));
  if (state.position < 0 || state.position > windowCount())
    return absl::InvalidArgumentError(absl::StrCat(
        "sampler state: position ", state.position, " is outside [0, ",
        windowCount(), "] windows of ", file_->path()));
  if (state.epoch != state_.epoch)
    orderEpoch(state.epoch);
  state_ = state;
  return absl::OkStatus();
}

} // namespace moert::data
