//===- Printable.h - error messages safe to print to a terminal -*- C++ -*-===//
//
// Error messages quote what they found in files, and files come from
// anywhere: a config field can hold escape sequences that clear and recolour
// the terminal, a binary file bytes that are not UTF-8. Every tool passes its
// messages through printable() as it prints them, so no message needs to
// escape what it quotes, and none can break the one-line rule.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_BASE_PRINTABLE_H
#define MOERT_BASE_PRINTABLE_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moert {

/// Messages longer than this are cut, saying how much was left out.
constexpr size_t kMaxMessageBytes = 1024;

namespace detail {
/// The length of the valid UTF-8 sequence of two to four bytes at s[i], or
/// 0 (overlong forms, surrogates and values past U+10FFFF are invalid).
inline size_t utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t j) { return uint8_t(s[j]); };
  uint8_t lead = byte(i);
  size_t length = lead >= 0xC2 && lead <= 0xDF   ? 2
                  : lead >= 0xE0 && lead <= 0xEF ? 3
                  : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                 : 0;
  if (length == 0 || i + length > s.size())
    return 0;
  for (size_t j = i + 1; j < i + length; ++j)
    if ((byte(j) & 0xC0) != 0x80)
      return 0;
  uint8_t second = byte(i + 1);
  if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second > 0x9F) ||
      (lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second > 0x8F))
    return 0;
  return length;
}
} // namespace detail

/// `message` with control characters and bytes that are not UTF-8 written
/// as \xNN (valid UTF-8 kept), cut to about `maxBytes`.
inline std::string printable(std::string_view message,
                             size_t maxBytes = kMaxMessageBytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  while (i < message.size() && out.size() < maxBytes) {
    uint8_t c = uint8_t(message[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += char(c);
      ++i;
    } else if (size_t n = c >= 0x80 ? detail::utf8SequenceLength(message, i)
                                    : 0) {
      out.append(message.substr(i, n));
      i += n;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    }
  }
  if (i < message.size())
    out += "... (" + std::to_string(message.size() - i) + " more bytes)";
  return out;
}

/// For other string types (absl::string_view, llvm::StringRef).
template <typename Text> std::string printable(const Text &message) {
  return printable(std::string_view(message.data(), message.size()));
}

} // namespace moert

#endif // MOERT_BASE_PRINTABLE_H
