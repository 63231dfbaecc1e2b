//===- TokenFileFormat.h - the layout of .tok files -------------*- C++ -*-===//
//
// A .tok file (docs/data.md), all integers little-endian:
//
//   [0, 64)        the header below
//   [64, ...)      token_count ids of token_bytes each (2: uint16, 4: uint32),
//                  the documents concatenated
//   documents_offset (a multiple of 8, right after the ids)
//                  document_count + 1 uint64 token offsets: 0, the start of
//                  each later document, token_count; the file ends there
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_TOKENFILEFORMAT_H
#define MOERT_DATA_TOKENFILEFORMAT_H

#include <cstdint>

namespace moert::data {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the .tok reader maps ids in place: little-endian hosts only");

inline constexpr char kTokenFileMagic[8] = {'M', 'O', 'E', 'T',
                                            'O', 'K', '\r', '\n'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr uint64_t kTokenFileHeaderBytes = 64;
/// eos_id when the tokenizer has none.
inline constexpr uint32_t kNoEos = 0xffffffffu;
/// Ids are handed out as int32.
inline constexpr uint64_t kMaxVocab = uint64_t(1) << 31;
/// Vocabularies up to this size store uint16 ids.
inline constexpr uint64_t kMaxUint16Vocab = uint64_t(1) << 16;

/// The header, byte for byte.
struct TokenFileHeader {
  char magic[8];            // kTokenFileMagic
  uint32_t version;         // kTokenFileVersion
  uint32_t token_bytes;     // 2 when vocab_size <= 65536, else 4
  uint64_t vocab_size;      // every id is < vocab_size
  uint64_t token_count;     // ids in the file, EOS ids included
  uint64_t document_count;  // entries of the document table, less one
  uint64_t tokens_offset;   // kTokenFileHeaderBytes
  uint64_t documents_offset;
  uint32_t eos_id;          // kNoEos when the tokenizer has none
  uint32_t reserved;        // 0
};
static_assert(sizeof(TokenFileHeader) == kTokenFileHeaderBytes);

/// The width of ids for a vocabulary of `vocab` entries.
inline uint32_t tokenBytesFor(uint64_t vocab) {
  return vocab <= kMaxUint16Vocab ? 2 : 4;
}

/// Where the document table starts after `tokens` ids of `tokenBytes`.
inline uint64_t documentsOffsetFor(uint64_t tokens, uint32_t tokenBytes) {
  return (kTokenFileHeaderBytes + tokens * tokenBytes + 7) / 8 * 8;
}

} // namespace moert::data

#endif // MOERT_DATA_TOKENFILEFORMAT_H
