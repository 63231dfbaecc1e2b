//===- MappedTokenFile.cpp - map and validate a .tok file -----------------===//
//
// Every size is checked with overflow-safe arithmetic against the file's
// length before anything is dereferenced: a damaged header may hold any
// 64-bit value.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/MappedTokenFile.h"

#include "runtime/data/TokenFileFormat.h"

#include "runtime/base/MappedFile.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moert::data {

namespace {
absl::Status invalid(const std::string &path, const std::string &message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

template <typename Id>
absl::Status checkIds(const std::string &path, const uint8_t *data,
                      uint64_t count, uint64_t vocab) {
  const Id *ids = reinterpret_cast<const Id *>(data);
  for (uint64_t i = 0; i < count; ++i)
    if (ids[i] >= vocab)
      return invalid(path, absl::StrCat("token id ", uint64_t(ids[i]),
                                        " at token ", i,
                                        " is >= vocab_size ", vocab));
  return absl::OkStatus();
}
} // namespace

MappedTokenFile::MappedTokenFile() = default;
MappedTokenFile::MappedTokenFile(MappedTokenFile &&) noexcept = default;
MappedTokenFile &
MappedTokenFile::operator=(MappedTokenFile &&) noexcept = default;
MappedTokenFile::~MappedTokenFile() = default;

absl::StatusOr<MappedTokenFile> MappedTokenFile::open(const std::string &path) {
  MappedTokenFile file;
  file.path_ = path;
  absl::StatusOr<std::unique_ptr<MappedFile>> mapped =
      MappedFile::open(path, kTokenFileHeaderBytes,
                       absl::StrCat(kTokenFileHeaderBytes, "-byte header"));
  if (!mapped.ok())
    return mapped.status();
  file.mapping_ = std::move(*mapped);
  const uint8_t *bytes = file.mapping_->data();
  uint64_t size = file.mapping_->size();

  TokenFileHeader header;
  std::memcpy(&header, bytes, sizeof(header));
  if (std::memcmp(header.magic, kTokenFileMagic, sizeof(header.magic)) != 0)
    return invalid(path, "bad magic: not a .tok file");
  if (header.version != kTokenFileVersion)
    return invalid(path, absl::StrCat("unsupported version ", header.version,
                                      " (this build reads version ",
                                      kTokenFileVersion, ")"));
  if (header.vocab_size == 0 || header.vocab_size > kMaxVocab)
    return invalid(path, absl::StrCat("vocab_size ", header.vocab_size,
                                      " is outside [1, 2^31]"));
  if (header.token_bytes != tokenBytesFor(header.vocab_size))
    return invalid(path, absl::StrCat("token_bytes ", header.token_bytes,
                                      " does not match vocab_size ",
                                      header.vocab_size, " (expected ",
                                      tokenBytesFor(header.vocab_size), ")"));
  if (header.eos_id != kNoEos && header.eos_id >= header.vocab_size)
    return invalid(path, absl::StrCat("eos_id ", header.eos_id,
                                      " is >= vocab_size ", header.vocab_size));
  if (header.tokens_offset != kTokenFileHeaderBytes)
    return invalid(path, absl::StrCat("tokens_offset ", header.tokens_offset,
                                      " is not ", kTokenFileHeaderBytes));
  uint64_t idBytes;
  if (__builtin_mul_overflow(header.token_count, uint64_t(header.token_bytes),
                             &idBytes) ||
      idBytes > size - kTokenFileHeaderBytes)
    return invalid(path, absl::StrCat("token_count ", header.token_count,
                                      " overflows the file of ", size,
                                      " bytes"));
  uint64_t documentsOffset =
      documentsOffsetFor(header.token_count, header.token_bytes);
  if (header.documents_offset != documentsOffset)
    return invalid(path, absl::StrCat("documents_offset ",
                                      header.documents_offset,
                                      " is not the end of the ids (",
                                      documentsOffset, ")"));
  // The table fills the rest of the file exactly.
  if (documentsOffset > size || header.document_count >= size / 8 ||
      (header.document_count + 1) * 8 != size - documentsOffset)
    return invalid(path, absl::StrCat("document_count ", header.document_count,
                                      " does not match the ",
                                      size - std::min(size, documentsOffset),
                                      " bytes of document table after offset ",
                                      documentsOffset));

  const uint64_t *table =
      reinterpret_cast<const uint64_t *>(bytes + documentsOffset);
  if (table[0] != 0)
    return invalid(path, absl::StrCat("document table entry 0 is ", table[0],
                                      ", not 0"));
  for (uint64_t d = 1; d <= header.document_count; ++d)
    if (table[d] < table[d - 1] || table[d] > header.token_count)
      return invalid(path, absl::StrCat("document table entry ", d, " (",
                                        table[d], ") is not within [",
                                        table[d - 1], ", ", header.token_count,
                                        "]"));
  if (table[header.document_count] != header.token_count)
    return invalid(path, absl::StrCat("document table ends at ",
                                      table[header.document_count],
                                      ", not at token_count ",
                                      header.token_count));

  const uint8_t *ids = bytes + kTokenFileHeaderBytes;
  uint64_t count = header.token_count, vocab = header.vocab_size;
  absl::Status idsOk = header.token_bytes == 2
                           ? checkIds<uint16_t>(path, ids, count, vocab)
                           : checkIds<uint32_t>(path, ids, count, vocab);
  if (!idsOk.ok())
    return idsOk;

  file.vocab_ = header.vocab_size;
  file.tokens_ = header.token_count;
  file.documents_ = header.document_count;
  file.tokenBytes_ = header.token_bytes;
  if (header.eos_id != kNoEos)
    file.eos_ = header.eos_id;
  file.ids_ = ids;
  file.table_ = table;
  return file;
}

int32_t MappedTokenFile::token(int64_t index) const {
  return tokenBytes_ == 2
             ? int32_t(reinterpret_cast<const uint16_t *>(ids_)[index])
             : int32_t(reinterpret_cast<const uint32_t *>(ids_)[index]);
}

void MappedTokenFile::read(int64_t begin, int64_t count, int32_t *out) const {
  if (tokenBytes_ == 2) {
    const uint16_t *ids = reinterpret_cast<const uint16_t *>(ids_) + begin;
    std::copy(ids, ids + count, out);
  } else {
    const uint32_t *ids = reinterpret_cast<const uint32_t *>(ids_) + begin;
    std::copy(ids, ids + count, out);
  }
}

int64_t MappedTokenFile::documentBegin(int64_t document) const {
  return int64_t(table_[document]);
}

std::vector<int32_t> MappedTokenFile::document(int64_t document) const {
  int64_t begin = documentBegin(document), end = documentBegin(document + 1);
  std::vector<int32_t> ids(size_t(end - begin));
  read(begin, end - begin, ids.data());
  return ids;
}

} // namespace moert::data
