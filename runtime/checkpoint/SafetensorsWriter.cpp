//===- SafetensorsWriter.cpp - write a .safetensors file atomically -------===//
//
// Everything is checked before a byte is written; the file is built under a
// temporary name, flushed to disk and renamed, so a reader never sees a
// half-written checkpoint under the final name.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Messages.h"
#include "runtime/checkpoint/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <unistd.h>

namespace moert {
using checkpoint_messages::quotedName;
using checkpoint_messages::shapeString;

namespace {
absl::Status invalid(const std::string &path, const std::string &message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

/// The byte size of `tensor`, or an error if its shape is unusable.
absl::StatusOr<uint64_t> byteSize(const std::string &path,
                                  const TensorToWrite &tensor) {
  uint64_t bytes = dtypeSize(tensor.dtype);
  for (int64_t extent : tensor.shape)
    if (extent < 0 || __builtin_mul_overflow(bytes, uint64_t(extent), &bytes))
      return invalid(path, absl::StrCat("tensor ", quotedName(tensor.name),
                                        ": shape ", shapeString(tensor.shape),
                                        " is negative or overflows"));
  if (bytes > 0 && !tensor.data)
    return invalid(path, absl::StrCat("tensor ", quotedName(tensor.name),
                                      ": no data for ", bytes, " bytes"));
  return bytes;
}

/// write(2) until done: it may write less than asked.
bool writeAll(int fd, const void *data, uint64_t size) {
  const char *next = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t written =
        ::write(fd, next, size_t(std::min<uint64_t>(size, 1u << 30)));
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return false;
    next += written;
    size -= uint64_t(written);
  }
  return true;
}
} // namespace

absl::Status
writeSafetensors(const std::string &path,
                 const std::vector<TensorToWrite> &tensors,
                 const std::map<std::string, std::string> &metadata) {
  // ordered_json keeps the tensors in the order given.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::set<std::string> names;
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const TensorToWrite &tensor : tensors) {
    if (tensor.name == "__metadata__")
      return invalid(path, "a tensor cannot be named '__metadata__'");
    if (!names.insert(tensor.name).second)
      return invalid(path, absl::StrCat("tensor ", quotedName(tensor.name),
                                        " is written twice"));
    absl::StatusOr<uint64_t> bytes = byteSize(path, tensor);
    if (!bytes.ok())
      return bytes.status();
    header[tensor.name] = {{"dtype", dtypeName(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + *bytes}}};
    sizes.push_back(*bytes);
    offset += *bytes;
  }
  std::string text;
  try {
    text = header.dump(); // throws on names that are not UTF-8
  } catch (const nlohmann::json::exception &error) {
    return invalid(path,
                   absl::StrCat("cannot encode the header: ", error.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = uint8_t(uint64_t(text.size()) >> (8 * i));

  std::string temporary = absl::StrCat(path, ".tmp-", getpid());
  int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": cannot create ", temporary, ": ", std::strerror(errno)));
  bool ok = writeAll(fd, length, 8) && writeAll(fd, text.data(), text.size());
  for (size_t i = 0; ok && i < tensors.size(); ++i)
    ok = writeAll(fd, tensors[i].data, sizes[i]);
  // fsync before rename: otherwise a crash may leave the final name on an
  // empty file.
  ok = ok && ::fsync(fd) == 0;
  int error = ok ? 0 : errno;
  if (::close(fd) != 0 && ok) {
    error = errno;
    ok = false;
  }
  if (ok && std::rename(temporary.c_str(), path.c_str()) != 0) {
    error = errno;
    ok = false;
  }
  if (!ok) {
    ::unlink(temporary.c_str());
    return absl::InternalError(
        absl::StrCat(path, ": write failed: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

} // namespace moert
