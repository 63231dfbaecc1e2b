//===- JsonDepth.h - bound the nesting of JSON before parsing ---*- C++ -*-===//
//
// JSON parsers recurse (llvm::json while parsing, nlohmann while destroying
// a value), so a few hundred KB of '[' overflow the stack. Every JSON input
// is scanned first and refused when it nests deeper than any file moec
// reads legitimately does (configs, safetensors headers, shard indexes and
// trainer states nest a few levels).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_BASE_JSONDEPTH_H
#define MOERT_BASE_JSONDEPTH_H

#include <cstddef>
#include <string_view>

namespace moert {

constexpr int kMaxJsonDepth = 64;

/// The byte offset of the first '[' or '{' of `text` that opens a level
/// deeper than kMaxJsonDepth, or npos when there is none. Brackets inside
/// strings do not count.
inline size_t findJsonTooDeep(std::string_view text) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i; // the escaped character
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

} // namespace moert

#endif // MOERT_BASE_JSONDEPTH_H
