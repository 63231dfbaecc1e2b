//===- SentencePieceModelCheck.cpp - vet a model before sentencepiece -----===//

#include "runtime/data/SentencePieceModelCheck.h"

#include "absl/strings/str_cat.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace moert::data {
namespace {

/// The length-delimited fields numbered `field` at the top level of the
/// protobuf message `message`; false when its wire format is malformed.
bool lengthDelimitedFields(std::string_view message, uint32_t field,
                           std::vector<std::string_view> &found) {
  auto varint = [&](uint64_t &value) {
    value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (message.empty())
        return false;
      uint8_t byte = uint8_t(message[0]);
      message.remove_prefix(1);
      value |= uint64_t(byte & 0x7F) << shift;
      if (!(byte & 0x80))
        return true;
    }
    return false;
  };
  while (!message.empty()) {
    uint64_t tag = 0, value = 0;
    if (!varint(tag))
      return false;
    switch (tag & 7) {
    case 0: // varint
      if (!varint(value))
        return false;
      break;
    case 1: // 64-bit
    case 5: // 32-bit
      if (message.size() < ((tag & 7) == 1 ? 8u : 4u))
        return false;
      message.remove_prefix((tag & 7) == 1 ? 8 : 4);
      break;
    case 2: // length-delimited
      if (!varint(value) || value > message.size())
        return false;
      if ((tag >> 3) == field)
        found.push_back(message.substr(0, value));
      message.remove_prefix(value);
      break;
    default: // groups: never in a ModelProto
      return false;
    }
  }
  return true;
}

/// Darts-clone's unit layout (darts.h), as sentencepiece reads it.
struct Unit {
  uint32_t bits;
  bool hasLeaf() const { return (bits >> 8) & 1; }
  uint32_t value() const { return bits & ((1u << 31) - 1); }
  uint32_t label() const { return bits & ((1u << 31) | 0xFF); }
  uint32_t offset() const { return (bits >> 10) << ((bits & (1u << 9)) >> 6); }
};

/// The blob: uint32 trie size in bytes, the trie's units, then the
/// replacement strings (normalizer.cc's DecodePrecompiledCharsMap).
absl::Status checkCharsMap(std::string_view blob) {
  if (blob.empty())
    return absl::OkStatus(); // no map: the identity
  uint32_t trieBytes = 0;
  if (blob.size() <= 4)
    return absl::InvalidArgumentError("shorter than its header");
  std::memcpy(&trieBytes, blob.data(), 4);
  if (trieBytes > blob.size() - 4)
    return absl::InvalidArgumentError("its trie is longer than the map");
  std::string_view strings = blob.substr(4 + trieBytes);
  if (trieBytes < 4 || strings.empty() || strings.back() != '\0')
    return absl::InvalidArgumentError(
        "an empty trie, or replacements that do not end in NUL");
  // Not before the check: memcpy into an empty vector's null data is
  // undefined even for zero bytes (found by fuzzing).
  std::vector<Unit> units(trieBytes / 4);
  std::memcpy(units.data(), blob.data() + 4, units.size() * 4);

  // Every node reachable from the root, as commonPrefixSearch walks them:
  // node i leads to base = i ^ offset, where its leaf value sits and from
  // which byte c leads to base ^ c (followed when that unit's label is c).
  auto fail = [](uint64_t node, const char *what) {
    return absl::InvalidArgumentError(
        absl::StrCat("its trie node ", node, " ", what));
  };
  std::vector<bool> seen(units.size(), false);
  std::vector<uint32_t> pending = {0};
  seen[0] = true;
  while (!pending.empty()) {
    uint32_t node = pending.back();
    pending.pop_back();
    uint64_t base = uint64_t(node) ^ units[node].offset();
    if ((base | 0xFF) >= units.size())
      return fail(node, "leads outside the trie");
    if (node != 0 && units[node].hasLeaf() &&
        units[base].value() >= strings.size())
      return fail(node, "has a value outside the replacement strings");
    for (uint32_t c = 0; c < 256; ++c) {
      uint64_t child = base ^ c;
      if (units[child].label() == c && !seen[child]) {
        seen[child] = true;
        pending.push_back(uint32_t(child));
      }
    }
  }
  return absl::OkStatus();
}

} // namespace

absl::Status checkSentencePieceCharsMaps(std::string_view model) {
  // ModelProto: 3 normalizer_spec, 5 denormalizer_spec; in each,
  // NormalizerSpec 2 precompiled_charsmap. Every occurrence is checked (a
  // parser merges repeated ones).
  for (auto [field, name] : {std::pair{3u, "normalizer_spec"},
                             std::pair{5u, "denormalizer_spec"}}) {
    std::vector<std::string_view> specs, maps;
    if (!lengthDelimitedFields(model, field, specs))
      return absl::InvalidArgumentError("malformed protobuf");
    for (std::string_view spec : specs)
      if (!lengthDelimitedFields(spec, 2, maps))
        return absl::InvalidArgumentError(
            absl::StrCat("field '", name, "' is malformed"));
    for (std::string_view map : maps)
      if (absl::Status status = checkCharsMap(map); !status.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("field '", name, ".precompiled_charsmap': ",
                         status.message()));
  }
  return absl::OkStatus();
}

} // namespace moert::data
