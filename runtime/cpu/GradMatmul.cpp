//===- GradMatmul.cpp - oneDNN GEMMs with transposed operands -------------===//
//
// A transposed operand is a memory descriptor in "ba" order over the same
// buffer. The context is this file's own (Linear.cpp keeps its own, so
// linear() is untouched); two CPU engines share the OpenMP threads. Whether
// oneDNN splits a long reduction across threads (which would make results
// depend on the thread count) is checked by the tests, not assumed.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/GradMatmul.h"

#include "absl/strings/str_cat.h"

#include <dnnl.hpp>

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
  std::map<std::tuple<int64_t, int64_t, int64_t, int, int, bool, bool>,
           dnnl::matmul>
      cache;
};

Context &context() {
  static Context *instance = new Context(); // lives for the process
  return *instance;
}

tag tagOf(Layout layout) { return layout == Layout::kAsIs ? tag::ab : tag::ba; }

dnnl::matmul primitive(int64_t m, int64_t k, int64_t n, Layout aLayout,
                       Layout bLayout, bool bf16, bool accumulate) {
  Context &ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  auto key = std::make_tuple(m, k, n, int(aLayout), int(bLayout), bf16,
                             accumulate);
  auto it = ctx.cache.find(key);
  if (it != ctx.cache.end())
    return it->second;
  if (ctx.cache.size() > 4096) // many distinct expert group sizes: start over
    ctx.cache.clear();
  dt in = bf16 ? dt::bf16 : dt::f32;
  dnnl::memory::desc a({m, k}, in, tagOf(aLayout)),
      b({k, n}, in, tagOf(bLayout)), c({m, n}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr,
                                  ctx.engine);
  return ctx.cache.emplace(key, dnnl::matmul(pd)).first->second;
}
} // namespace

absl::Status gradMatmul(const void *a, Layout aLayout, const void *b,
                        Layout bLayout, float *c, int64_t m, int64_t k,
                        int64_t n, bool bf16, bool accumulate) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (k == 0) { // an empty sum, which oneDNN does not take
    if (!accumulate)
      std::fill(c, c + m * n, 0.0f);
    return absl::OkStatus();
  }
  Context &ctx = context();
  dt in = bf16 ? dt::bf16 : dt::f32;
  try {
    dnnl::matmul matmul = primitive(m, k, n, aLayout, bLayout, bf16, accumulate);
    dnnl::memory aMemory({{m, k}, in, tagOf(aLayout)}, ctx.engine,
                         const_cast<void *>(a));
    dnnl::memory bMemory({{k, n}, in, tagOf(bLayout)}, ctx.engine,
                         const_cast<void *>(b));
    dnnl::memory cMemory({{m, n}, dt::f32, tag::ab}, ctx.engine, c);
    matmul.execute(ctx.stream, {{DNNL_ARG_SRC, aMemory},
                                {DNNL_ARG_WEIGHTS, bMemory},
                                {DNNL_ARG_DST, cMemory}});
    ctx.stream.wait();
  } catch (const dnnl::error &error) {
    return absl::InternalError(absl::StrCat("oneDNN matmul [", m, "x", k,
                                            "] x [", k, "x", n,
                                            "]: ", error.what()));
  }
  return absl::OkStatus();
}

} // namespace moert::cpu
