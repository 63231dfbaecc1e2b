//===- TokenFileWriter.cpp - write .tok files atomically ------------------===//

#include "runtime/data/TokenFileWriter.h"

#include "runtime/base/OutputPath.h"

#include "runtime/data/TokenFileFormat.h"

#include "absl/strings/str_cat.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

namespace moert::data {

namespace {
constexpr size_t kFlushBytes = size_t(1) << 20;

/// fsyncs the directory holding `path`, so the rename itself is durable.
void syncDirectory(const std::string &path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
} // namespace

absl::StatusOr<std::unique_ptr<TokenFileWriter>>
TokenFileWriter::create(const std::string &path, uint64_t vocabSize,
                        std::optional<uint32_t> eosId) {
  if (vocabSize == 0 || vocabSize > kMaxVocab)
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": vocab_size ", vocabSize, " is outside [1, 2^31]"));
  if (eosId && (*eosId == kNoEos || *eosId >= vocabSize))
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": eos_id ", *eosId, " is outside the vocabulary [0, ",
        vocabSize, ")"));
  if (absl::Status refused = checkOutputFile(path); !refused.ok())
    return refused;
  std::unique_ptr<TokenFileWriter> writer(new TokenFileWriter);
  writer->path_ = path;
  writer->temporary_ = absl::StrCat(path, ".tmp-", getpid());
  writer->vocab_ = vocabSize;
  writer->tokenBytes_ = tokenBytesFor(vocabSize);
  writer->eos_ = eosId;
  writer->fd_ = ::open(writer->temporary_.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (writer->fd_ < 0)
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": cannot create ", writer->temporary_, ": ",
        std::strerror(errno)));
  // The header is written last; reserve its bytes.
  writer->buffer_.assign(kTokenFileHeaderBytes, '\0');
  return writer;
}

absl::Status TokenFileWriter::error(const std::string &message) {
  if (status_.ok())
    status_ = absl::InvalidArgumentError(absl::StrCat(path_, ": ", message));
  return status_;
}

absl::Status TokenFileWriter::writeOut(const void *data, size_t bytes) {
  const char *next = static_cast<const char *>(data);
  while (bytes > 0) {
    ssize_t written = ::write(fd_, next, bytes);
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return error(absl::StrCat("cannot write ", temporary_, ": ",
                                std::strerror(errno)));
    next += written;
    bytes -= size_t(written);
  }
  return absl::OkStatus();
}

absl::Status TokenFileWriter::flush() {
  absl::Status status = writeOut(buffer_.data(), buffer_.size());
  buffer_.clear();
  return status;
}

absl::Status TokenFileWriter::addDocument(absl::Span<const int32_t> ids,
                                          bool appendEos) {
  if (!status_.ok() || finished_)
    return finished_ ? error("addDocument after finish") : status_;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || uint64_t(ids[i]) >= vocab_)
      return error(absl::StrCat("document ", documentEnds_.size(),
                                ": token id ", ids[i], " at position ", i,
                                " is outside the vocabulary [0, ", vocab_,
                                ")"));
  }
  auto append = [&](uint32_t id) {
    char bytes[4];
    std::memcpy(bytes, &id, 4); // little-endian host (TokenFileFormat.h)
    buffer_.append(bytes, tokenBytes_);
  };
  for (int32_t id : ids)
    append(uint32_t(id));
  bool eos = eos_ && appendEos;
  if (eos)
    append(*eos_);
  tokens_ += ids.size() + (eos ? 1 : 0);
  documentEnds_.push_back(tokens_);
  return buffer_.size() >= kFlushBytes ? flush() : absl::OkStatus();
}

absl::Status TokenFileWriter::finish() {
  if (!status_.ok() || finished_)
    return finished_ ? error("finish called twice") : status_;
  uint64_t documentsOffset = documentsOffsetFor(tokens_, tokenBytes_);
  uint64_t written = kTokenFileHeaderBytes + tokens_ * tokenBytes_;
  buffer_.append(documentsOffset - written, '\0');
  std::vector<uint64_t> table{0};
  table.insert(table.end(), documentEnds_.begin(), documentEnds_.end());
  buffer_.append(reinterpret_cast<const char *>(table.data()),
                 table.size() * sizeof(uint64_t));
  if (absl::Status status = flush(); !status.ok())
    return status;

  TokenFileHeader header{};
  std::memcpy(header.magic, kTokenFileMagic, sizeof(header.magic));
  header.version = kTokenFileVersion;
  header.token_bytes = tokenBytes_;
  header.vocab_size = vocab_;
  header.token_count = tokens_;
  header.document_count = documentEnds_.size();
  header.tokens_offset = kTokenFileHeaderBytes;
  header.documents_offset = documentsOffset;
  header.eos_id = eos_ ? *eos_ : kNoEos;
  if (::pwrite(fd_, &header, sizeof(header), 0) != ssize_t(sizeof(header)) ||
      ::fsync(fd_) != 0)
    return error(absl::StrCat("cannot write ", temporary_, ": ",
                              std::strerror(errno)));
  ::close(fd_);
  fd_ = -1;
  if (::rename(temporary_.c_str(), path_.c_str()) != 0)
    return error(absl::StrCat("cannot rename ", temporary_, " into place: ",
                              std::strerror(errno)));
  syncDirectory(path_);
  finished_ = true;
  return absl::OkStatus();
}

TokenFileWriter::~TokenFileWriter() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!finished_)
    ::unlink(temporary_.c_str());
}

absl::Status
writeTokenFile(const std::string &path, uint64_t vocabSize,
               std::optional<uint32_t> eosId,
               const std::vector<std::vector<int32_t>> &documents) {
  absl::StatusOr<std::unique_ptr<TokenFileWriter>> writer =
      TokenFileWriter::create(path, vocabSize, eosId);
  if (!writer.ok())
    return writer.status();
  for (const std::vector<int32_t> &document : documents)
    if (absl::Status status = (*writer)->addDocument(document); !status.ok())
      return status;
  return (*writer)->finish();
}

} // namespace moert::data
