//===- ScratchFiles.h - files the checkpoint tests build byte by byte -----===//

#ifndef MOERT_TESTS_CHECKPOINT_SCRATCHFILES_H
#define MOERT_TESTS_CHECKPOINT_SCRATCHFILES_H

#include "tests/runtime/TestDirs.h"

#include <cstdint>
#include <string>

namespace moert::testing {

/// The 8-byte little-endian encoding of `value`.
inline std::string littleEndian64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[i] = char(uint8_t(value >> (8 * i)));
  return bytes;
}

/// A safetensors file: the header JSON, then `dataBytes` bytes of data.
inline std::string withHeader(const std::string &header, size_t dataBytes) {
  return littleEndian64(header.size()) + header +
         std::string(dataBytes, '\x5a');
}

} // namespace moert::testing

#endif // MOERT_TESTS_CHECKPOINT_SCRATCHFILES_H
