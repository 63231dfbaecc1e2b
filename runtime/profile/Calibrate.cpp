//===- Calibrate.cpp - measure this machine's ceilings --------------------===//
//
// The GEMM rate is that of one large square oneDNN GEMM (the kernel every
// product of the CPU backend runs), median of several; the bandwidth that
// of a stream triad, and of a read-only sum, over arrays twice the last
// level cache. Reads and writes have separate limits on some machines (on
// this one, the triad's reads and writes together move more bytes than a
// read-only stream can): the triad is the ceiling of kernels that write as
// much as they read, the read bandwidth that of weight streaming. Both on all the
// process's OpenMP threads, as the kernels run.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/base/MedianTime.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/profile/Ceilings.h"

#include <algorithm>
#include <cstring>
#include <omp.h>
#include <unistd.h>
#include <vector>

namespace moert::profile {
namespace {

absl::StatusOr<double> gemmGflops(DType type) {
  constexpr int64_t n = 2048;
  std::vector<float> x(n * n, 0.5f), y(n * n);
  std::vector<float> w32(type == DType::kF32 ? n * n : 0, 0.25f);
  std::vector<uint16_t> w16(type == DType::kBF16 ? n * n : 0,
                            floatToBf16(0.25f));
  std::vector<uint16_t> x16(type == DType::kBF16 ? n * n : 0,
                            floatToBf16(0.5f));
  cpu::Weight w{type == DType::kF32 ? static_cast<const void *>(w32.data())
                                    : w16.data(),
                type};
  // bf16: x already converted, as the kernels convert it once per block.
  bool native = type == DType::kBF16 && cpu::bf16MatmulIsNative();
  absl::Status status;
  double ms = medianMillis(7, [&] {
    if (status.ok())
      status = native ? cpu::linearBf16(x16.data(), n, n, w, n, y.data())
                      : cpu::linear(x.data(), n, n, w, n, y.data());
  });
  if (!status.ok())
    return status;
  return 2.0 * n * n * n / ms / 1e6;
}


/// Elements of a float array for a bandwidth measurement: twice the last
/// level cache (this machine reports 512 MiB of L3), at least 256 MiB, at
/// most 1 GiB, split into `arrays`.
size_t bandwidthElements(size_t arrays) {
  long cache = sysconf(_SC_LEVEL3_CACHE_SIZE);
  size_t bytes = std::clamp<size_t>(cache > 0 ? 2 * size_t(cache) : 0,
                                    size_t(256) << 20, size_t(1) << 30);
  return bytes / arrays / sizeof(float);
}
} // namespace

double measureTriadGbs() {
  const size_t n = bandwidthElements(3);
  std::vector<float> a(n, 1.0f), b(n, 2.0f), c(n, 0.0f);
  double ms = medianMillis(11, [&] {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i)
      c[i] = a[i] + 0.5f * b[i];
  });
  return 3.0 * sizeof(float) * double(n) / ms / 1e6;
}

namespace {
/// The sum of blocks [first, last) of 1024 floats, into 64 independent
/// partial sums so that loads, not add latency, limit it; prefetched 4 KB
/// ahead. Compiled per ISA, as the kernels that stream weights are.
MOERT_ISA_CLONES
float sumBlocks(const float *a, size_t first, size_t last) {
  using Lanes = float __attribute__((vector_size(64)));
  constexpr size_t kLanes = sizeof(Lanes) / sizeof(float), kVectors = 4,
                   kBlock = 1024, kAhead = 4096 / sizeof(float);
  float total = 0;
  for (size_t block = first; block < last; ++block) {
    const float *p = a + block * kBlock;
    Lanes sums[kVectors] = {};
    for (size_t i = 0; i < kBlock; i += kLanes * kVectors) {
      __builtin_prefetch(p + i + kAhead);
      for (size_t v = 0; v < kVectors; ++v) {
        Lanes lanes;
        std::memcpy(&lanes, p + i + v * kLanes, sizeof lanes);
        sums[v] += lanes;
      }
    }
    for (size_t v = 0; v < kVectors; ++v)
      for (size_t i = 0; i < kLanes; ++i)
        total += sums[v][i];
  }
  return total;
}
} // namespace

double measureReadGbs() {
  constexpr size_t kBlock = 1024;
  const size_t n = bandwidthElements(1) / kBlock * kBlock;
  std::vector<float> a(n, 1.0f);
  volatile float sink = 0;
  double ms = medianMillis(11, [&] {
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
      size_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
      size_t blocks = n / kBlock;
      total += sumBlocks(a.data(), blocks * thread / threads,
                         blocks * (thread + 1) / threads);
    }
    sink = total;
  });
  (void)sink;
  return sizeof(float) * double(n) / ms / 1e6;
}

absl::StatusOr<Ceilings> measureCeilings() {
  Ceilings ceilings;
  ceilings.threads = omp_get_max_threads();
  for (auto [type, out] : {std::pair{DType::kF32, &ceilings.gemmGflopsF32},
                           std::pair{DType::kBF16, &ceilings.gemmGflopsBf16}}) {
    absl::StatusOr<double> rate = gemmGflops(type);
    if (!rate.ok())
      return rate.status();
    *out = *rate;
  }
  ceilings.bandwidthGbs = measureTriadGbs();
  ceilings.readBandwidthGbs = measureReadGbs();
  return ceilings;
}

} // namespace moert::profile
