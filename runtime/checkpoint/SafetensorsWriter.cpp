//===- SafetensorsWriter.cpp - write a .safetensors file atomically -------===//
//
// Everything is checked before a byte is written; the file is built under a
// temporary name, flushed to disk and renamed, so a reader never sees a
// half-written checkpoint under the final name.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/OutputPath.h"
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

absl::StatusOr<std::unique_ptr<SafetensorsStream>>
SafetensorsStream::create(const std::string &path,
                          const std::vector<TensorToWrite> &tensors,
                          const std::map<std::string, std::string> &metadata,
                          bool requireData) {
  if (absl::Status refused = checkOutputFile(path); !refused.ok())
    return refused;
  // ordered_json keeps the tensors in the order given.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const TensorToWrite &tensor : tensors) {
    if (tensor.name == "__metadata__")
      return invalid(path, "a tensor cannot be named '__metadata__'");
    if (!names.insert(tensor.name).second)
      return invalid(path, absl::StrCat("tensor ", quotedName(tensor.name),
                                        " is written twice"));
    TensorToWrite shapeOnly = tensor;
    if (!requireData)
      shapeOnly.data = &tensor; // any non-null pointer: data comes later
    absl::StatusOr<uint64_t> bytes = byteSize(path, shapeOnly);
    if (!bytes.ok())
      return bytes.status();
    header[tensor.name] = {{"dtype", dtypeName(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + *bytes}}};
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

  std::unique_ptr<SafetensorsStream> stream(new SafetensorsStream());
  stream->path_ = path;
  stream->temporary_ = absl::StrCat(path, ".tmp-", getpid());
  stream->expected_ = offset;
  stream->fd_ = ::open(stream->temporary_.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (stream->fd_ < 0)
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot create ", stream->temporary_, ": ",
                     std::strerror(errno)));
  if (!writeAll(stream->fd_, length, 8) ||
      !writeAll(stream->fd_, text.data(), text.size()))
    return absl::InternalError(
        absl::StrCat(path, ": write failed: ", std::strerror(errno)));
  return stream;
}

absl::Status SafetensorsStream::append(const void *data, uint64_t bytes) {
  if (fd_ < 0 || written_ + bytes > expected_)
    return absl::InternalError(
        absl::StrCat(path_, ": more tensor data than the header announced"));
  if (bytes > 0 && !writeAll(fd_, data, bytes))
    return absl::InternalError(
        absl::StrCat(path_, ": write failed: ", std::strerror(errno)));
  written_ += bytes;
  return absl::OkStatus();
}

absl::Status SafetensorsStream::finish() {
  if (written_ != expected_)
    return absl::InternalError(absl::StrCat(path_, ": ", written_, " of ",
                                            expected_,
                                            " bytes of tensor data written"));
  // fsync before rename: otherwise a crash may leave the final name on an
  // empty file.
  bool ok = ::fsync(fd_) == 0;
  int error = ok ? 0 : errno;
  if (::close(fd_) != 0 && ok) {
    error = errno;
    ok = false;
  }
  fd_ = -1;
  if (ok && std::rename(temporary_.c_str(), path_.c_str()) != 0) {
    error = errno;
    ok = false;
  }
  if (!ok) {
    ::unlink(temporary_.c_str());
    return absl::InternalError(
        absl::StrCat(path_, ": write failed: ", std::strerror(error)));
  }
  finished_ = true;
  return absl::OkStatus();
}

SafetensorsStream::~SafetensorsStream() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!finished_ && !temporary_.empty())
    ::unlink(temporary_.c_str());
}

absl::Status
writeSafetensors(const std::string &path,
                 const std::vector<TensorToWrite> &tensors,
                 const std::map<std::string, std::string> &metadata) {
  absl::StatusOr<std::unique_ptr<SafetensorsStream>> stream =
      SafetensorsStream::create(path, tensors, metadata);
  if (!stream.ok())
    return stream.status();
  for (const TensorToWrite &tensor : tensors) {
    uint64_t bytes = dtypeSize(tensor.dtype);
    for (int64_t extent : tensor.shape)
      bytes *= uint64_t(extent);
    if (absl::Status status = (*stream)->append(tensor.data, bytes);
        !status.ok())
      return status;
  }
  return (*stream)->finish();
}

} // namespace moert
