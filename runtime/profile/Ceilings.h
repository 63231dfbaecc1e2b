//===- Ceilings.h - this machine's GEMM rates and bandwidth -----*- C++ -*-===//
//
// What a kernel is measured against: the rate of a large oneDNN GEMM per
// dtype and the bandwidth of a stream triad, measured on this machine with
// the run's thread count (`moe-run calibrate`) and cached as JSON in the
// user's cache directory, so that profiles need not re-measure them.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_PROFILE_CEILINGS_H
#define MOERT_PROFILE_CEILINGS_H

#include "runtime/base/DType.h"

#include "absl/status/statusor.h"

#include <string>

namespace moert::profile {

struct Ceilings {
  double gemmGflopsF32 = 0;
  double gemmGflopsBf16 = 0;
  double bandwidthGbs = 0;
  /// Read-only bandwidth (a sum over arrays far larger than the caches): the
  /// limit of kernels that stream weights, such as decoding. 0: not measured
  /// (a cache file written before it was).
  double readBandwidthGbs = 0;
  int threads = 0;

  double gemmGflops(DType type) const {
    return type == DType::kBF16 ? gemmGflopsBf16 : gemmGflopsF32;
  }
};

/// Measures the ceilings on the calling process's OpenMP threads (a few
/// seconds).
absl::StatusOr<Ceilings> measureCeilings();

/// The bandwidth of a stream triad over arrays far larger than the caches,
/// in GB/s.
double measureTriadGbs();

/// The bandwidth of a read-only sum over an array far larger than the
/// caches, in GB/s.
double measureReadGbs();

/// $XDG_CACHE_HOME/moec/ceilings.json, else ~/.cache/moec/ceilings.json.
absl::StatusOr<std::string> defaultCeilingsPath();

/// Reads a ceilings file; a malformed one is an error naming the file and
/// the field.
absl::StatusOr<Ceilings> readCeilings(const std::string &path);
/// Writes one atomically, creating its directory.
absl::Status writeCeilings(const std::string &path, const Ceilings &ceilings);

/// The cached ceilings for this thread count, measured and cached first
/// when the cache has none (or `remeasure`). `measured` says which.
absl::StatusOr<Ceilings> cachedCeilings(const std::string &path,
                                        bool remeasure, bool &measured);

} // namespace moert::profile

#endif // MOERT_PROFILE_CEILINGS_H
