//===- Safetensors.cpp - map and validate a .safetensors file -------------===//
//
// Layout: 8-byte little-endian header length N, N bytes of JSON, then the
// data; data_offsets are relative to the start of the data. Nothing is
// handed out until every entry has been checked against the file's size.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Safetensors.h"

#include "runtime/base/JsonDepth.h"

#include "runtime/checkpoint/Messages.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moert {
using checkpoint_messages::quotedName;
using checkpoint_messages::shapeString;

namespace {
// The reference implementation's limit: a larger header is damage.
constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;

absl::Status invalid(const std::string &path, const std::string &message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

/// `value` as JSON text, cut short: a damaged field may be megabytes long.
std::string excerpt(const nlohmann::json &value) {
  constexpr size_t kMaxChars = 64;
  // ASCII only, so cutting cannot split a character; parsed input is valid
  // UTF-8, so dump() cannot throw.
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true);
  if (text.size() > kMaxChars)
    text = text.substr(0, kMaxChars) + "...";
  return text;
}

/// The checked view of one header entry. `data` is the start of the data
/// section, `dataBytes` its size.
absl::StatusOr<TensorView> parseTensor(const std::string &path,
                                       const std::string &name,
                                       const nlohmann::json &entry,
                                       const uint8_t *data,
                                       uint64_t dataBytes) {
  std::string where = absl::StrCat("tensor ", quotedName(name), ": ");
  if (!entry.is_object())
    return invalid(path, where + "entry is not a JSON object");
  for (const char *field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field))
      return invalid(path, absl::StrCat(where, "field '", field,
                                        "' is missing (needs dtype, shape "
                                        "and data_offsets)"));
  const nlohmann::json &dtype = entry["dtype"], &shape = entry["shape"],
                       &offsets = entry["data_offsets"];

  if (!dtype.is_string())
    return invalid(path, where + "field 'dtype' is not a string");
  std::string dtypeText = dtype.get<std::string>();
  std::optional<DType> type = dtypeFromName(dtypeText);
  if (!type)
    return invalid(path,
                   absl::StrCat(where, "unsupported dtype ",
                                absl::Utf8SafeCEscape(dtypeText),
                                " (supported: F32, BF16, F16, I32, I64)"));

  TensorView view;
  view.name = name;
  view.dtype = *type;
  if (!shape.is_array())
    return invalid(path, where + "field 'shape' is not an array");
  // Elements times element size must fit in 64 bits: otherwise a huge shape
  // could wrap around to match a small byte range.
  uint64_t bytesNeeded = dtypeSize(*type);
  for (const nlohmann::json &dim : shape) {
    if (!dim.is_number_unsigned())
      return invalid(path,
                     absl::StrCat(where, "field 'shape' holds ", excerpt(dim),
                                  ", not a non-negative integer"));
    uint64_t extent = dim.get<uint64_t>();
    if (extent > uint64_t(INT64_MAX) ||
        __builtin_mul_overflow(bytesNeeded, extent, &bytesNeeded))
      return invalid(path, absl::StrCat(where, "field 'shape' ", excerpt(shape),
                                        " overflows 64 bits of bytes"));
    view.shape.push_back(int64_t(extent));
  }

  if (!offsets.is_array() || offsets.size() != 2 ||
      !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    return invalid(path, absl::StrCat(where, "field 'data_offsets' is ",
                                      excerpt(offsets),
                                      ", not [begin, end] of non-negative "
                                      "integers"));
  uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  if (begin > end)
    return invalid(path, absl::StrCat(where, "data_offsets [", begin, ", ", end,
                                      "] begin after they end"));
  if (end > dataBytes)
    return invalid(path, absl::StrCat(where, "data_offsets [", begin, ", ", end,
                                      "] fall outside the ", dataBytes,
                                      " bytes of data"));
  if (end - begin != bytesNeeded)
    return invalid(path,
                   absl::StrCat(where, "data_offsets [", begin, ", ", end,
                                "] hold ", end - begin, " bytes but shape ",
                                shapeString(view.shape), " of ",
                                dtypeName(*type), " needs ", bytesNeeded));
  view.data = data + begin;
  view.bytes = size_t(end - begin);
  return view;
}
} // namespace

SafetensorsFile::SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile &&) noexcept = default;
SafetensorsFile &
SafetensorsFile::operator=(SafetensorsFile &&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

absl::StatusOr<SafetensorsFile> SafetensorsFile::open(const std::string &path) {
  SafetensorsFile file;
  file.path_ = path;
  absl::StatusOr<std::unique_ptr<MappedFile>> mapped =
      MappedFile::open(path, 8, "8-byte header length");
  if (!mapped.ok())
    return mapped.status();
  file.mapping_ = std::move(*mapped);
  const uint8_t *bytes = file.mapping_->data();
  uint64_t size = file.mapping_->size();

  uint64_t headerBytes = 0;
  for (int i = 7; i >= 0; --i)
    headerBytes = (headerBytes << 8) | bytes[i];
  if (headerBytes > kMaxHeaderBytes || headerBytes > size - 8)
    return invalid(path, absl::StrCat("header length ", headerBytes,
                                      " does not fit in the file of ", size,
                                      " bytes (limit ", kMaxHeaderBytes, ")"));
  const uint8_t *data = bytes + 8 + headerBytes;
  uint64_t dataBytes = size - 8 - headerBytes;

  std::string_view headerText(reinterpret_cast<const char *>(bytes + 8),
                              size_t(headerBytes));
  if (size_t deep = findJsonTooDeep(headerText); deep != headerText.npos)
    return invalid(path, absl::StrCat("malformed header JSON: nested deeper "
                                      "than ", kMaxJsonDepth, " levels at byte ",
                                      8 + deep));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, data);
  } catch (const nlohmann::json::exception &error) {
    // nlohmann escapes control characters in what(): still one line.
    return invalid(path, absl::StrCat("malformed header JSON: ", error.what()));
  }
  if (!header.is_object())
    return invalid(path, absl::StrCat("the header is not a JSON object "
                                      "(found ",
                                      header.type_name(), ")"));

  for (const auto &[name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        return invalid(path, "field '__metadata__' is not an object");
      for (const auto &[key, value] : entry.items()) {
        if (!value.is_string())
          return invalid(path, absl::StrCat("__metadata__ ", quotedName(key),
                                            " is not a string"));
        file.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    absl::StatusOr<TensorView> view =
        parseTensor(path, name, entry, data, dataBytes);
    if (!view.ok())
      return view.status();
    file.tensors_.push_back(std::move(*view));
  }

  // File order; header.items() is sorted by name, so ties (empty tensors at
  // one offset) keep name order.
  std::stable_sort(
      file.tensors_.begin(), file.tensors_.end(),
      [](const TensorView &a, const TensorView &b) { return a.data < b.data; });
  // Empty tensors own no bytes, so they cannot overlap anything. Among the
  // others, sorted and disjoint so far, the last one ends furthest.
  const TensorView *previous = nullptr;
  for (const TensorView &next : file.tensors_) {
    if (next.bytes == 0)
      continue;
    if (previous && previous->data + previous->bytes > next.data)
      return invalid(
          path, absl::StrCat("tensors ", quotedName(previous->name), " [",
                             previous->data - data, ", ",
                             previous->data + previous->bytes - data, "] and ",
                             quotedName(next.name), " [", next.data - data,
                             ", ", next.data + next.bytes - data, "] overlap"));
    previous = &next;
  }
  for (size_t i = 0; i < file.tensors_.size(); ++i)
    file.byName_.emplace(file.tensors_[i].name, i);
  return file;
}

const TensorView *SafetensorsFile::find(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : &tensors_[it->second];
}

} // namespace moert
