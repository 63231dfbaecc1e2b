//===- PackedExperts.cpp - expert weights repacked for the GEMM -----------===//
//
// The blocked layout is the one oneDNN's matmul picks for the weights of a
// [kRowBlock, k] x [k, n] product ("any" weights); the products of fewer
// rows are made with that layout given explicitly, one primitive for each
// row count up to kRowBlock, all planned for one thread. A product of
// exactly an expert's rows costs what its rows do: rounding 17 rows up to
// 24 cost as much as 24 (bf16 and fp32 MoE layers at 64 tokens ran 12%
// faster without it). Shapes are shared by every block of the process (the
// layers of a model have the same few), so they are made once: a few ms
// each.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/PackedExperts.h"

#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/OneDnnThreads.h"
#include "runtime/cpu/Scratch.h"

#include "absl/strings/str_cat.h"

#include <dnnl.hpp>

#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace moert::cpu {
namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine &engine() {
  static dnnl::engine *instance = // lives for the process
      new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *instance;
}

struct PackedScratch;
} // namespace

struct PackedExperts::Shape {
  int64_t k, n;
  dt type;
  dnnl::memory::desc weights; // the blocked layout
  std::vector<dnnl::matmul> byRows; // [i]: i + 1 rows
  size_t scratchpadBytes = 0;
};

namespace {
using Shape = PackedExperts::Shape;

/// The shape [k, n] of `type`, made on first use.
absl::StatusOr<std::shared_ptr<const Shape>> shapeOf(int64_t k, int64_t n,
                                                     dt type) {
  static std::mutex mutex;
  static auto *cache =
      new std::map<std::tuple<int64_t, int64_t, int>,
                   std::shared_ptr<const Shape>>(); // lives for the process
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_tuple(k, n, int(type));
  if (auto it = cache->find(key); it != cache->end())
    return it->second;
  auto shape = std::make_shared<Shape>();
  shape->k = k;
  shape->n = n;
  shape->type = type;
  try {
    ThreadCount planned(1);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto product = [&](int64_t rows, const dnnl::memory::desc &weights) {
      dnnl::memory::desc src({rows, k}, type, tag::ab),
          dst({rows, n}, dt::f32, tag::ab);
      return dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(src, weights, dst), attr, engine());
    };
    shape->weights = product(PackedExperts::kRowBlock,
                             dnnl::memory::desc({k, n}, type, tag::any))
                         .weights_desc();
    for (int64_t rows = 1; rows <= PackedExperts::kRowBlock; ++rows) {
      auto pd = product(rows, shape->weights);
      shape->scratchpadBytes =
          std::max(shape->scratchpadBytes, pd.scratchpad_desc().get_size());
      shape->byRows.emplace_back(pd);
    }
  } catch (const dnnl::error &error) {
    return absl::InternalError(absl::StrCat("oneDNN cannot pack expert weights [",
                                            k, "x", n, "]: ", error.what()));
  }
  return cache->emplace(key, std::move(shape)).first->second;
}

size_t elementBytes(dt type) { return type == dt::bf16 ? 2 : 4; }
} // namespace

PackedExperts::~PackedExperts() {
  for (Family *family : {&gateUp_, &down_})
    ::operator delete[](family->data, std::align_val_t(64));
}

absl::StatusOr<std::shared_ptr<const PackedExperts>>
PackedExperts::pack(const MoeBlockWeights &block) {
  DType type = block.gate.dtype;
  bool bf16 = type == DType::kBF16 && bf16MatmulIsNative();
  if ((!bf16 && type != DType::kF32) || block.d == 0 || block.f == 0)
    return std::shared_ptr<const PackedExperts>();
  std::shared_ptr<PackedExperts> packed(
      new PackedExperts(block.d, block.f, bf16));
  if (auto s = packed->packFamily(packed->gateUp_, block.gate, &block.up,
                                  block.experts, block.d, block.f,
                                  kGateUpChunk);
      !s.ok())
    return s;
  if (auto s = packed->packFamily(packed->down_, block.down, nullptr,
                                  block.experts, block.f, block.d, kDownChunk);
      !s.ok())
    return s;
  return std::shared_ptr<const PackedExperts>(std::move(packed));
}

/// Each expert's weights of `first` (and `second`) are [n, k] row-major
/// (experts one after the other), read by the GEMM as [k, n] transposed.
/// Chunk j is rows [j * chunk, j * chunk + w) of `first`, then the same rows
/// of `second`: a [k, w] or [k, 2w] matrix.
absl::Status PackedExperts::packFamily(Family &family, const Weight &first,
                                       const Weight *second, int64_t experts,
                                       int64_t k, int64_t n, int64_t chunk) {
  dt type = bf16_ ? dt::bf16 : dt::f32;
  size_t bytes = elementBytes(type);
  int64_t count = chunks(n, chunk);
  for (int64_t j = 0; j < count; ++j) {
    int64_t columns = width(n, chunk, j) * (second ? 2 : 1);
    auto shape = shapeOf(k, columns, type);
    if (!shape.ok())
      return shape.status();
    family.offsets.push_back(family.expertBytes);
    family.expertBytes += (*shape)->weights.get_size();
    family.shapes.push_back(*std::move(shape));
  }
  family.data = static_cast<char *>(::operator new[](
      family.expertBytes * experts, std::align_val_t(64)));
  std::vector<char> joined(second ? size_t(2 * chunk * k) * bytes : 0);
  try {
    dnnl::stream stream(engine());
    std::vector<dnnl::reorder> reorders; // by chunk, the same for every expert
    for (int64_t j = 0; j < count; ++j)
      reorders.emplace_back(dnnl::reorder::primitive_desc(
          engine(), {{k, family.shapes[j]->n}, type, tag::ba}, engine(),
          family.shapes[j]->weights));
    for (int64_t e = 0; e < experts; ++e)
      for (int64_t j = 0; j < count; ++j) {
        const Shape &shape = *family.shapes[j];
        int64_t w = width(n, chunk, j);
        size_t rows = size_t(e * n + j * chunk) * k * bytes;
        const char *plain = static_cast<const char *>(first.data) + rows;
        if (second) {
          std::memcpy(joined.data(), plain, size_t(w * k) * bytes);
          std::memcpy(joined.data() + size_t(w * k) * bytes,
                      static_cast<const char *>(second->data) + rows,
                      size_t(w * k) * bytes);
          plain = joined.data();
        }
        dnnl::memory source({{k, shape.n}, type, tag::ba}, engine(),
                            const_cast<char *>(plain));
        dnnl::memory packed(shape.weights, engine(),
                            family.data + e * family.expertBytes +
                                family.offsets[j]);
        reorders[j].execute(stream, source, packed);
        stream.wait();
      }
  } catch (const dnnl::error &error) {
    return absl::InternalError(
        absl::StrCat("oneDNN cannot pack expert weights: ", error.what()));
  }
  return absl::OkStatus();
}

namespace {
/// One thread's arguments of a shape's product of some rows, made once:
/// each call only points them at its data (making them per call cost a few
/// percent of a small batch's MoE layer).
struct ProductArgs {
  dnnl::memory src, weights, dst, scratchpad;
  std::unordered_map<int, dnnl::memory> all;
};

ProductArgs &productArgs(const Shape &shape, int64_t rows) {
  thread_local std::map<std::pair<const Shape *, int64_t>, ProductArgs> made;
  auto [at, added] = made.try_emplace({&shape, rows});
  ProductArgs &args = at->second;
  if (added) {
    args.src =
        dnnl::memory({{rows, shape.k}, shape.type, tag::ab}, engine(), nullptr);
    args.weights = dnnl::memory(shape.weights, engine(), nullptr);
    args.dst =
        dnnl::memory({{rows, shape.n}, dt::f32, tag::ab}, engine(), nullptr);
    args.all = {{DNNL_ARG_SRC, args.src},
                {DNNL_ARG_WEIGHTS, args.weights},
                {DNNL_ARG_DST, args.dst}};
    if (shape.scratchpadBytes > 0) {
      args.scratchpad =
          dnnl::memory({{int64_t(shape.scratchpadBytes)}, dt::u8, tag::a},
                       engine(), nullptr);
      args.all.emplace(DNNL_ARG_SCRATCHPAD, args.scratchpad);
    }
  }
  return args;
}
} // namespace

absl::Status PackedExperts::run(const Family &family, int64_t e, int64_t j,
                                const void *a, int64_t rows, float *c) const {
  const Shape &shape = *family.shapes[j];
  thread_local dnnl::stream stream(engine());
  try {
    ProductArgs &args = productArgs(shape, rows);
    args.src.set_data_handle(const_cast<void *>(a));
    args.weights.set_data_handle(family.data + e * family.expertBytes +
                                 family.offsets[j]);
    args.dst.set_data_handle(c);
    if (shape.scratchpadBytes > 0)
      args.scratchpad.set_data_handle(
          threadScratch<uint8_t, PackedScratch>(shape.scratchpadBytes));
    ThreadCount running(1);
    shape.byRows[rows - 1].execute(stream, args.all);
    stream.wait();
  } catch (const dnnl::error &error) {
    return absl::InternalError(absl::StrCat("oneDNN matmul [", rows, "x",
                                            shape.k, "] x packed [", shape.k,
                                            "x", shape.n, "]: ", error.what()));
  }
  return absl::OkStatus();
}

absl::Status PackedExperts::gateUp(int64_t e, int64_t j, const void *x,
                                   int64_t rows, float *tile) const {
  return run(gateUp_, e, j, x, rows, tile);
}

absl::Status PackedExperts::down(int64_t e, int64_t j, const void *hidden,
                                 int64_t rows, float *tile) const {
  return run(down_, e, j, hidden, rows, tile);
}

} // namespace moert::cpu
