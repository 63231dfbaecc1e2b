//===- Linear.cpp - GEMMs through oneDNN ----------------------------------===//
//
// Weights stay in their [N, K] checkpoint layout: oneDNN reads them as a
// [K, N] matrix in "ba" order, so nothing is transposed or copied. Primitives
// are built once per shape and thread count (oneDNN plans a primitive's
// split over the threads when it is created) and cached.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/Scratch.h"
#include "runtime/cpu/WeightElement.h"

#include "absl/strings/str_cat.h"

#include <dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

namespace moert::cpu {
namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::mutex mutex;
  std::map<std::tuple<int64_t, int64_t, int64_t, int, int>, dnnl::matmul>
      cache;
};

Context &context() {
  static Context *instance = new Context(); // lives for the process
  return *instance;
}

/// The matmul for x[m,k] (type `in`) times w[n,k]^T into fp32 y[m,n].
dnnl::matmul primitive(int64_t m, int64_t k, int64_t n, dt in) {
  Context &ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  auto key = std::make_tuple(m, k, n, int(in), omp_get_max_threads());
  auto it = ctx.cache.find(key);
  if (it != ctx.cache.end())
    return it->second;
  if (ctx.cache.size() > 4096) // a process running many shapes: start over
    ctx.cache.clear();
  dnnl::memory::desc src({m, k}, in, tag::ab), weights({k, n}, in, tag::ba),
      dst({m, n}, dt::f32, tag::ab);
  dnnl::matmul::primitive_desc pd(
      dnnl::matmul::desc(src, weights, dst), ctx.engine);
  return ctx.cache.emplace(key, dnnl::matmul(pd)).first->second;
}

absl::Status run(const void *x, const void *w, float *y, int64_t m, int64_t k,
                 int64_t n, dt in) {
  Context &ctx = context();
  try {
    dnnl::matmul matmul = primitive(m, k, n, in);
    dnnl::memory src({{m, k}, in, tag::ab}, ctx.engine, const_cast<void *>(x));
    dnnl::memory weights({{k, n}, in, tag::ba}, ctx.engine, const_cast<void *>(w));
    dnnl::memory dst({{m, n}, dt::f32, tag::ab}, ctx.engine, y);
    matmul.execute(ctx.stream, {{DNNL_ARG_SRC, src},
                                {DNNL_ARG_WEIGHTS, weights},
                                {DNNL_ARG_DST, dst}});
    ctx.stream.wait();
  } catch (const dnnl::error &error) {
    return absl::InternalError(absl::StrCat("oneDNN matmul [", m, "x", k,
                                            "] x [", k, "x", n,
                                            "]: ", error.what()));
  }
  return absl::OkStatus();
}

struct LinearScratch;
} // namespace

bool bf16MatmulIsNative() {
  static const bool native = [] {
    try {
      dnnl::memory::desc src({64, 64}, dt::bf16, tag::ab),
          weights({64, 64}, dt::bf16, tag::ba), dst({64, 64}, dt::f32, tag::ab);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst),
                                      context().engine);
      std::string impl = pd.impl_info_str();
      return impl.find("ref") == std::string::npos;
    } catch (const dnnl::error &) {
      return false;
    }
  }();
  return native;
}

absl::Status linearBf16(const uint16_t *x, int64_t m, int64_t k, Weight w,
                        int64_t n, float *y) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (streamsLinear(w, m)) {
    streamLinearBf16(x, m, k, w, n, y);
    return absl::OkStatus();
  }
  return run(x, w.data, y, m, k, n, dt::bf16);
}

absl::Status linearStored(const void *x, bool xBf16, int64_t m, int64_t k,
                          Weight w, int64_t n, void *y, bool yBf16) {
  if (xBf16 && (w.dtype != DType::kBF16 || !bf16MatmulIsNative()))
    return absl::InvalidArgumentError(
        "a bf16 input needs a bf16 weight and native bf16 GEMMs");
  if (m == 0 || n == 0)
    return absl::OkStatus();
  float *out = yBf16 ? threadScratch<float, LinearScratch, 1>(size_t(m * n))
                     : static_cast<float *>(y);
  absl::Status status =
      xBf16 ? linearBf16(static_cast<const uint16_t *>(x), m, k, w, n, out)
            : linear(static_cast<const float *>(x), m, k, w, n, out);
  if (status.ok() && yBf16)
    roundToBf16(out, m * n, static_cast<uint16_t *>(y));
  return status;
}

absl::Status linear(const float *x, int64_t m, int64_t k, Weight w, int64_t n,
                    float *y) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (streamsLinear(w, m)) {
    streamLinear(x, m, k, w, n, y);
    return absl::OkStatus();
  }
  if (w.dtype == DType::kF32)
    return run(x, w.data, y, m, k, n, dt::f32);
  if (w.dtype == DType::kBF16 && bf16MatmulIsNative()) {
    uint16_t *xb = threadScratch<uint16_t, LinearScratch>(size_t(m * k));
    roundToBf16(x, m * k, xb);
    return run(xb, w.data, y, m, k, n, dt::bf16);
  }
  // No native bf16 GEMM (or f16 weights): widen the weights to fp32. This is
  // done per call, not cached by address: a freed weight buffer whose address
  // is reused would otherwise be served stale.
  std::vector<float> wide(size_t(n * k));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n * k; ++i)
    wide[i] = weightElement(w, i);
  return run(x, wide.data(), y, m, k, n, dt::f32);
}

} // namespace moert::cpu
