//===- TrainData.cpp - where training batches come from -------------------===//

#include "runtime/base/ReadFile.h"
#include "runtime/train/TrainData.h"

#include "runtime/data/MappedTokenFile.h"
#include "runtime/data/Sampler.h"
#include "runtime/data/TokenFileFormat.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include <cstring>
#include <fstream>
#include <sstream>

namespace moert::train {
namespace {
constexpr int32_t kIgnoreLabel = -100;

/// Windows of seq + 1 ids from a .tok file.
class TokenFileSource : public BatchSource {
public:
  TokenFileSource(data::MappedTokenFile file, int64_t batch)
      : file_(std::move(file)), batch_(batch) {}
  absl::Status init(const data::SamplerOptions &options) {
    absl::StatusOr<data::Sampler> sampler = data::Sampler::create(file_, options);
    if (!sampler.ok())
      return sampler.status();
    sampler_.emplace(std::move(*sampler));
    return absl::OkStatus();
  }

  Batch next() override {
    int64_t seq = sampler_->seq();
    std::vector<int32_t> windows = sampler_->next(batch_);
    Batch batch;
    for (int64_t b = 0; b < batch_; ++b) {
      const int32_t *window = windows.data() + b * (seq + 1);
      batch.ids.insert(batch.ids.end(), window, window + seq);
      batch.labels.insert(batch.labels.end(), window + 1, window + seq + 1);
    }
    return batch;
  }
  nlohmann::json state() const override {
    return {{"epoch", sampler_->state().epoch},
            {"position", sampler_->state().position}};
  }
  absl::Status restore(const nlohmann::json &state) override {
    if (!state.contains("epoch") || !state.contains("position") ||
        !state["epoch"].is_number_integer() ||
        !state["position"].is_number_integer())
      return absl::InvalidArgumentError("field 'data' lacks an integer 'epoch' or 'position'");
    return sampler_->restore(
        {state["epoch"].get<int64_t>(), state["position"].get<int64_t>()});
  }

private:
  data::MappedTokenFile file_; // the sampler reads it: never moved after init
  int64_t batch_;
  std::optional<data::Sampler> sampler_;
};

/// Sequences of the text format, taken in order and cycled.
class TextSource : public BatchSource {
public:
  TextSource(std::vector<std::vector<int32_t>> lines, int64_t batch,
             int64_t seq)
      : lines_(std::move(lines)), batch_(batch), seq_(seq) {}

  Batch next() override {
    Batch batch;
    batch.ids.assign(batch_ * seq_, 0);
    batch.labels.assign(batch_ * seq_, kIgnoreLabel);
    for (int64_t b = 0; b < batch_; ++b) {
      const std::vector<int32_t> &line = lines_[position_++ % lines_.size()];
      for (size_t s = 0; s + 1 < line.size(); ++s) {
        batch.ids[b * seq_ + s] = line[s];
        batch.labels[b * seq_ + s] = line[s + 1];
      }
    }
    return batch;
  }
  nlohmann::json state() const override { return {{"position", position_}}; }
  absl::Status restore(const nlohmann::json &state) override {
    if (!state.contains("position") || !state["position"].is_number_integer() ||
        state["position"].get<int64_t>() < 0)
      return absl::InvalidArgumentError("field 'data.position' must be a non-negative integer");
    position_ = state["position"].get<int64_t>();
    return absl::OkStatus();
  }

private:
  std::vector<std::vector<int32_t>> lines_;
  int64_t batch_, seq_;
  int64_t position_ = 0;
};

absl::StatusOr<std::vector<std::vector<int32_t>>>
readTextLines(const std::string &path, const std::string &text, int64_t seq,
              int64_t vocab) {
  std::vector<std::vector<int32_t>> lines;
  int64_t number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    std::vector<int32_t> ids;
    for (absl::string_view token :
         absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty())) {
      int32_t id;
      if (!absl::SimpleAtoi(token, &id) || id < 0 || id >= vocab)
        return absl::InvalidArgumentError(absl::StrCat(
            path, ":", number, ": token '", token,
            "' is not an id in [0, ", vocab, ")"));
      ids.push_back(id);
    }
    if (ids.empty())
      continue;
    if (int64_t(ids.size()) < 2 || int64_t(ids.size()) > seq + 1)
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", number, ": a training sequence holds 2 to seq + 1 = ",
          seq + 1, " ids, this one ", ids.size()));
    lines.push_back(std::move(ids));
  }
  if (lines.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, ": no sequences"));
  return lines;
}
class RankBlockSource : public BatchSource {
public:
  RankBlockSource(std::unique_ptr<BatchSource> global, int rank, int ranks)
      : global_(std::move(global)), rank_(rank), ranks_(ranks) {}
  Batch next() override {
    Batch all = global_->next();
    size_t each = all.ids.size() / size_t(ranks_);
    auto block = [&](const std::vector<int32_t> &values) {
      return std::vector<int32_t>(values.begin() + rank_ * each,
                                  values.begin() + (rank_ + 1) * each);
    };
    return {block(all.ids), block(all.labels)};
  }
  nlohmann::json state() const override { return global_->state(); }
  absl::Status restore(const nlohmann::json &state) override {
    return global_->restore(state);
  }

private:
  std::unique_ptr<BatchSource> global_;
  int rank_, ranks_;
};
} // namespace

std::unique_ptr<BatchSource> rankBlocks(std::unique_ptr<BatchSource> global,
                                        int rank, int ranks) {
  if (ranks == 1)
    return global;
  return std::make_unique<RankBlockSource>(std::move(global), rank, ranks);
}

absl::StatusOr<std::unique_ptr<BatchSource>>
openBatchSource(const std::string &path, int64_t batch, int64_t seq,
                int64_t vocab, uint64_t seed, bool shuffle) {
  if (absl::Status readable = checkReadableFile(path, "the training data");
      !readable.ok())
    return readable;
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(data::kTokenFileMagic)] = {};
  in.read(magic, sizeof(magic));
  if (in.gcount() == sizeof(magic) &&
      std::memcmp(magic, data::kTokenFileMagic, sizeof(magic)) == 0) {
    absl::StatusOr<data::MappedTokenFile> file = data::MappedTokenFile::open(path);
    if (!file.ok())
      return file.status();
    if (int64_t(file->vocabSize()) > vocab)
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": vocab_size ", file->vocabSize(),
          " exceeds the model's vocabulary of ", vocab));
    auto source = std::make_unique<TokenFileSource>(std::move(*file), batch);
    data::SamplerOptions options;
    options.seq = seq;
    options.seed = seed;
    options.shuffle = shuffle;
    if (absl::Status status = source->init(options); !status.ok())
      return status;
    return std::unique_ptr<BatchSource>(std::move(source));
  }
  in.clear();
  in.seekg(0);
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<std::vector<int32_t>>> lines =
      readTextLines(path, text.str(), seq, vocab);
  if (!lines.ok())
    return lines.status();
  return std::unique_ptr<BatchSource>(
      std::make_unique<TextSource>(std::move(*lines), batch, seq));
}

} // namespace moert::train
