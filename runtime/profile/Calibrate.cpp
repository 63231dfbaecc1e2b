//===- Calibrate.cpp - measure this machine's ceilings --------------------===//
//
// The GEMM rate is that of one large square oneDNN GEMM (the kernel every
// product of the CPU backend runs), median of several; the bandwidth that
// of a stream triad over arrays far larger than the caches. Both on all the
// process's OpenMP threads, as the kernels run.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/base/MedianTime.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/profile/Ceilings.h"

#include <omp.h>
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

} // namespace

double measureTriadGbs() {
  const size_t n = size_t(1) << 24; // 3 x 64 MiB, well past the caches
  std::vector<float> a(n, 1.0f), b(n, 2.0f), c(n, 0.0f);
  double ms = medianMillis(11, [&] {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i)
      c[i] = a[i] + 0.5f * b[i];
  });
  return 3.0 * sizeof(float) * double(n) / ms / 1e6;
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
  return ceilings;
}

} // namespace moert::profile
