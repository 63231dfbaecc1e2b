//===- GradMatmul.cpp - oneDNN GEMMs with transposed operands -------------===//
//
// A transposed operand is a memory descriptor in "ba" order over the same
// buffer. The context is this file's own (Linear.cpp keeps its own, so
// linear() is untouched); two CPU engines share the OpenMP threads.
//
// The dimensions are run-time ones (DNNL_RUNTIME_DIM_VAL): the grouped
// experts meet a new row count every few steps, and a primitive with fixed
// dimensions took about 0.4 ms to create, some 30 times a training step,
// while the run-time-shaped one is as fast at these sizes. So there is one
// primitive per layout pair, dtype, sum post-op and thread count, with the
// actual shape given at execution.
//
// oneDNN splits a long reduction over a small output across threads (a
// result that would depend on the thread count), so such GEMMs run on one
// thread, the thread count being set on the calling thread for the time of
// the primitive's creation and of each execution; larger outputs are split
// by rows and columns only, which the tests check rather than assume. Run
// from inside a parallel region, a GEMM runs on its caller alone. Each thread
// has its own stream and scratchpad (user-managed), so threads of a parallel
// region may run GEMMs concurrently, even the same primitive.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/OneDnnThreads.h"

#include "absl/strings/str_cat.h"

#include <dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

namespace moert::cpu {
namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct Entry {
  dnnl::matmul matmul;
  size_t scratchpadBytes;
};

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mutex;
  std::map<std::tuple<int, int, bool, bool, int>, Entry> cache;
};

Context &context() {
  static Context *instance = new Context(); // lives for the process
  return *instance;
}

tag tagOf(Layout layout) { return layout == Layout::kAsIs ? tag::ab : tag::ba; }

/// The run-time-shaped matmul for a layout pair, dtype and post-op, planned
/// for threadCount threads.
Entry primitive(Layout aLayout, Layout bLayout, bool bf16, bool accumulate,
                int threadCount) {
  Context &ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  auto key = std::make_tuple(int(aLayout), int(bLayout), bf16, accumulate,
                             threadCount);
  auto it = ctx.cache.find(key);
  if (it != ctx.cache.end())
    return it->second;
  dt in = bf16 ? dt::bf16 : dt::f32;
  constexpr int64_t kAny = DNNL_RUNTIME_DIM_VAL;
  dnnl::memory::desc a({kAny, kAny}, in, tagOf(aLayout)),
      b({kAny, kAny}, in, tagOf(bLayout)), c({kAny, kAny}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  ThreadCount planned(threadCount);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr,
                                  ctx.engine);
  Entry entry{dnnl::matmul(pd), pd.scratchpad_desc().get_size()};
  return ctx.cache.emplace(key, entry).first->second;
}

/// The calling thread's stream and grow-only scratchpad.
struct PerThread {
  dnnl::stream stream{context().engine};
  std::unique_ptr<uint8_t[]> scratchpad;
  size_t scratchpadBytes = 0;
};

PerThread &perThread() {
  thread_local PerThread state;
  return state;
}

/// c = op(a) op(b) on threadCount threads.
absl::Status run(const void *a, Layout aLayout, const void *b, Layout bLayout,
                 float *c, int64_t m, int64_t k, int64_t n, bool bf16,
                 bool accumulate, int threadCount) {
  Context &ctx = context();
  dt in = bf16 ? dt::bf16 : dt::f32;
  try {
    Entry entry = primitive(aLayout, bLayout, bf16, accumulate, threadCount);
    PerThread &local = perThread();
    if (local.scratchpadBytes < entry.scratchpadBytes) {
      local.scratchpad.reset(new uint8_t[entry.scratchpadBytes]);
      local.scratchpadBytes = entry.scratchpadBytes;
    }
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, dnnl::memory({{m, k}, in, tagOf(aLayout)}, ctx.engine,
                                    const_cast<void *>(a))},
        {DNNL_ARG_WEIGHTS, dnnl::memory({{k, n}, in, tagOf(bLayout)},
                                        ctx.engine, const_cast<void *>(b))},
        {DNNL_ARG_DST,
         dnnl::memory({{m, n}, dt::f32, tag::ab}, ctx.engine, c)}};
    if (entry.scratchpadBytes > 0)
      args.emplace(
          DNNL_ARG_SCRATCHPAD,
          dnnl::memory({{int64_t(entry.scratchpadBytes)}, dt::u8, tag::a},
                       ctx.engine, local.scratchpad.get()));
    ThreadCount running(threadCount);
    entry.matmul.execute(local.stream, args);
    local.stream.wait();
  } catch (const dnnl::error &error) {
    return absl::InternalError(absl::StrCat(
        "oneDNN matmul [", m, "x", k, "] x [", k, "x", n, "]: ", error.what()));
  }
  return absl::OkStatus();
}
} // namespace

absl::Status gradMatmul(const void *a, Layout aLayout, const void *b,
                        Layout bLayout, float *c, int64_t m, int64_t k,
                        int64_t n, bool bf16, bool accumulate,
                        Threads threads) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (k == 0) { // an empty sum, which oneDNN does not take
    if (!accumulate)
      std::fill(c, c + m * n, 0.0f);
    return absl::OkStatus();
  }
  // One thread when the output is too small to give every thread its own
  // blocks: there several threads may split the reduction among them, and
  // the result would depend on the thread count.
  int threadCount = 1;
  if (threads == Threads::kAll && !omp_in_parallel()) {
    threadCount = omp_get_max_threads();
    if (((m + 63) / 64) * ((n + 63) / 64) < 4 * int64_t(threadCount))
      threadCount = 1;
  }
  return run(a, aLayout, b, bLayout, c, m, k, n, bf16, accumulate, threadCount);
}

} // namespace moert::cpu
