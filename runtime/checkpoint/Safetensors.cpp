//===- Safetensors.cpp - read and write .safetensors files ----------------===//

#include "runtime/checkpoint/Safetensors.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moert {
namespace {
constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20; // as the reference

absl::Status invalid(const std::string &path, const std::string &message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

std::string shapeString(const std::vector<int64_t> &shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}
} // namespace

struct SafetensorsFile::Mapping {
  void *address = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (address != MAP_FAILED)
      munmap(address, size);
  }
};

absl::StatusOr<SafetensorsFile> SafetensorsFile::open(const std::string &path) {
  SafetensorsFile file;
  file.path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return invalid(path, "not a regular file");
  }
  size_t size = size_t(info.st_size);
  if (size < 8) {
    ::close(fd);
    return invalid(path, absl::StrCat("truncated: ", size,
                                      " bytes, shorter than the 8-byte header "
                                      "length"));
  }
  file.mapping_ = std::make_shared<Mapping>();
  file.mapping_->size = size;
  file.mapping_->address = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (file.mapping_->address == MAP_FAILED)
    return invalid(path, absl::StrCat("cannot map: ", std::strerror(errno)));
  const uint8_t *bytes = static_cast<const uint8_t *>(file.mapping_->address);

  uint64_t headerBytes = 0;
  for (int i = 7; i >= 0; --i)
    headerBytes = (headerBytes << 8) | bytes[i];
  if (headerBytes > kMaxHeaderBytes || headerBytes > size - 8)
    return invalid(path, absl::StrCat("header length ", headerBytes,
                                      " does not fit in the file of ", size,
                                      " bytes"));
  const uint8_t *data = bytes + 8 + headerBytes;
  uint64_t dataBytes = size - 8 - headerBytes;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + headerBytes);
  } catch (const nlohmann::json::exception &error) {
    return invalid(path, absl::StrCat("malformed header JSON: ", error.what()));
  }
  if (!header.is_object())
    return invalid(path, "the header is not a JSON object");

  for (auto &[name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        return invalid(path, "__metadata__ is not an object");
      for (auto &[key, value] : entry.items()) {
        if (!value.is_string())
          return invalid(path, absl::StrCat("__metadata__ '", key,
                                            "' is not a string"));
        file.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    std::string where = absl::StrCat("tensor '", name, "': ");
    if (!entry.is_object() || !entry.contains("dtype") ||
        !entry.contains("shape") || !entry.contains("data_offsets"))
      return invalid(path, where + "needs dtype, shape and data_offsets");
    const auto &dtype = entry["dtype"], &shape = entry["shape"],
               &offsets = entry["data_offsets"];
    if (!dtype.is_string())
      return invalid(path, where + "dtype is not a string");
    std::optional<DType> type = dtypeFromName(dtype.get<std::string>());
    if (!type)
      return invalid(path, absl::StrCat(where, "unsupported dtype ",
                                        dtype.get<std::string>(),
                                        " (supported: F32, BF16, F16, I32, I64)"));
    TensorView view;
    view.name = name;
    view.dtype = *type;
    if (!shape.is_array())
      return invalid(path, where + "shape is not an array");
    uint64_t count = 1;
    for (const auto &dim : shape) {
      if (!dim.is_number_unsigned())
        return invalid(path, where + "shape holds a negative or non-integer "
                                     "dimension");
      uint64_t d = dim.get<uint64_t>();
      if (d > (uint64_t(1) << 40) || __builtin_mul_overflow(count, d, &count))
        return invalid(path, where + "shape is too large");
      view.shape.push_back(int64_t(d));
    }
    if (!offsets.is_array() || offsets.size() != 2 ||
        !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      return invalid(path, where + "data_offsets must be [begin, end]");
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > dataBytes)
      return invalid(path, absl::StrCat(where, "data_offsets [", begin, ", ",
                                        end, "] fall outside the ", dataBytes,
                                        " bytes of data"));
    uint64_t needed = count * dtypeSize(*type);
    if (end - begin != needed)
      return invalid(path, absl::StrCat(where, "data_offsets [", begin, ", ",
                                        end, "] hold ", end - begin,
                                        " bytes but shape ",
                                        shapeString(view.shape), " of ",
                                        dtypeName(*type), " needs ", needed));
    view.data = data + begin;
    view.bytes = end - begin;
    file.tensors_.push_back(std::move(view));
  }

  std::sort(file.tensors_.begin(), file.tensors_.end(),
            [](const TensorView &a, const TensorView &b) { return a.data < b.data; });
  for (size_t i = 1; i < file.tensors_.size(); ++i) {
    const TensorView &prev = file.tensors_[i - 1], &next = file.tensors_[i];
    if (prev.data + prev.bytes > next.data)
      return invalid(path, absl::StrCat("tensors '", prev.name, "' and '",
                                        next.name, "' overlap"));
  }
  return file;
}

const TensorView *SafetensorsFile::find(std::string_view name) const {
  for (const TensorView &tensor : tensors_)
    if (tensor.name == name)
      return &tensor;
  return nullptr;
}

absl::Status writeSafetensors(const std::string &path,
                              const std::vector<TensorToWrite> &tensors,
                              const std::map<std::string, std::string> &metadata) {
  // nlohmann's ordered_json keeps the tensors in the order given.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const TensorToWrite &tensor : tensors) {
    if (header.contains(tensor.name))
      return invalid(path, absl::StrCat("tensor '", tensor.name,
                                        "' is written twice"));
    uint64_t count = 1;
    for (int64_t d : tensor.shape)
      count *= uint64_t(d);
    uint64_t bytes = count * dtypeSize(tensor.dtype);
    header[tensor.name] = {{"dtype", dtypeName(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + bytes}}};
    sizes.push_back(bytes);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string temporary = absl::StrCat(path, ".tmp-", getpid());
  FILE *out = std::fopen(temporary.c_str(), "wb");
  if (!out)
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot write: ", std::strerror(errno)));
  uint8_t length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  bool ok = std::fwrite(length, 1, 8, out) == 8 &&
            std::fwrite(text.data(), 1, text.size(), out) == text.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i)
    ok = sizes[i] == 0 ||
         std::fwrite(tensors[i].data, 1, sizes[i], out) == sizes[i];
  ok = (std::fclose(out) == 0) && ok;
  if (!ok || std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return absl::InternalError(
        absl::StrCat(path, ": write failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

} // namespace moert
