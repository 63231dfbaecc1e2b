//===- MappedFile.h - a read-only memory map of a whole file ----*- C++ -*-===//

#ifndef MOERT_BASE_MAPPEDFILE_H
#define MOERT_BASE_MAPPEDFILE_H

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moert {

/// A whole regular file mapped read-only; unmapped when destroyed. Held by
/// pointer, so views into it survive moves of their owner.
class MappedFile {
public:
  /// Maps `path`, which must be a regular file of at least `minBytes`
  /// bytes (`what` names that minimum in the error). Every error is one
  /// line starting with the path.
  static absl::StatusOr<std::unique_ptr<MappedFile>>
  open(const std::string &path, uint64_t minBytes, const std::string &what) {
    auto invalid = [&](const std::string &message) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return absl::NotFoundError(
          absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd);
      return invalid("not a regular file");
    }
    uint64_t size = uint64_t(info.st_size);
    if (size < minBytes || size == 0) {
      ::close(fd);
      return invalid(absl::StrCat("truncated: ", size,
                                  " bytes, shorter than the ", what));
    }
    void *address = mmap(nullptr, size_t(size), PROT_READ, MAP_PRIVATE, fd, 0);
    int mapError = errno;
    ::close(fd);
    if (address == MAP_FAILED)
      return invalid(absl::StrCat("cannot map: ", std::strerror(mapError)));
    return std::unique_ptr<MappedFile>(new MappedFile(address, size));
  }

  ~MappedFile() { munmap(address_, size_t(size_)); }
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;

  const uint8_t *data() const { return static_cast<const uint8_t *>(address_); }
  uint64_t size() const { return size_; }

private:
  MappedFile(void *address, uint64_t size) : address_(address), size_(size) {}
  void *address_;
  uint64_t size_;
};

} // namespace moert

#endif // MOERT_BASE_MAPPEDFILE_H
