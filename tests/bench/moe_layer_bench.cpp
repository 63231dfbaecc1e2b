//===- moe_layer_bench.cpp - MoE layer forward on the CPU -----------------===//
//
// Times one dropless MoE layer with the runtime's kernels, forward and
// forward + backward, both fused (fusedExperts, fusedExpertsGrad; the forward
// over weights repacked as inference has them, and read in place as
// training's forward reads them) and as the
// unfused chain (router GEMM + top-k, dispatch, grouped SwiGLU experts,
// combine, and their backward kernels); and the machine's limits: a plain
// oneDNN GEMM of the expert's shape on all tokens, and the memory bandwidth
// of a stream triad, with which the weight-streaming bound of the forward is
// the bytes of the experts that get tokens over that bandwidth.
//
//   moe_layer_bench [--tokens 4096] [--d 512] [--ffn 1408] [--experts 8]
//                   [--top-k 2] [--repeat 20] [--dtype f32|bf16]
//
// Prints `name: value` lines; medians over --repeat runs after one warm-up.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/base/MedianTime.h"
#include "runtime/profile/Ceilings.h"
#include "runtime/cpu/Grad.h"
#include "runtime/cpu/PackedExperts.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <omp.h>
#include <random>
#include <string>
#include <vector>

using namespace moert;

namespace {
/// 64-byte aligned, as the runtime's CpuBackend allocates weight buffers.
template <typename T> struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <typename U> Aligned64(const Aligned64<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T *p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const Aligned64 &) const { return true; }
  bool operator!=(const Aligned64 &) const { return false; }
};
template <typename T> using AlignedVector = std::vector<T, Aligned64<T>>;

struct WeightStorage {
  AlignedVector<float> f32;
  AlignedVector<uint16_t> bf16;
  cpu::Weight as(DType type) const {
    return type == DType::kBF16 ? cpu::Weight{bf16.data(), DType::kBF16}
                                : cpu::Weight{f32.data(), DType::kF32};
  }
};

WeightStorage randomWeights(size_t n, std::mt19937 &gen, float std) {
  std::normal_distribution<float> normal(0.0f, std);
  WeightStorage w;
  w.f32.resize(n);
  w.bf16.resize(n);
  for (size_t i = 0; i < n; ++i)
    w.bf16[i] = floatToBf16(w.f32[i] = normal(gen));
  return w;
}

bool check(const absl::Status &status) {
  if (!status.ok())
    std::fprintf(stderr, "moe_layer_bench: error: %s\n",
                 std::string(status.message()).c_str());
  return status.ok();
}
} // namespace

int main(int argc, char **argv) {
  int64_t tokens = 4096, d = 512, ffn = 1408, experts = 8, k = 2;
  int repeat = 20;
  std::string dtype = "f32";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    const char *value = argv[i + 1];
    if (flag == "--tokens") tokens = std::atoll(value);
    else if (flag == "--d") d = std::atoll(value);
    else if (flag == "--ffn") ffn = std::atoll(value);
    else if (flag == "--experts") experts = std::atoll(value);
    else if (flag == "--top-k") k = std::atoll(value);
    else if (flag == "--repeat") repeat = std::atoi(value);
    else if (flag == "--dtype") dtype = value;
    else {
      std::fprintf(stderr, "moe_layer_bench: error: unknown flag %s\n", flag.c_str());
      return 1;
    }
  }
  DType type = dtype == "bf16" ? DType::kBF16 : DType::kF32;

  std::mt19937 gen(1234);
  WeightStorage router = randomWeights(experts * d, gen, 0.02f);
  WeightStorage w1 = randomWeights(experts * ffn * d, gen, 0.02f);
  WeightStorage w3 = randomWeights(experts * ffn * d, gen, 0.02f);
  WeightStorage w2 = randomWeights(experts * d * ffn, gen, 0.02f);
  AlignedVector<float> x = randomWeights(tokens * d, gen, 1.0f).f32;

  std::vector<float> logits(tokens * experts), weights(tokens * k),
      grouped(tokens * k * d), expertOut(tokens * k * d), out(tokens * d);
  std::vector<int32_t> indices(tokens * k), slots(tokens * k);
  std::vector<int64_t> counts(experts);
  AlignedVector<float> dout = randomWeights(tokens * d, gen, 1.0f).f32;
  std::vector<float> dweights(tokens * k), dy(tokens * k * d),
      dgrouped(tokens * k * d), dx(tokens * d), dxRouter(tokens * d),
      dlogits(tokens * experts), drouter(experts * d), dw1(experts * ffn * d),
      dw3(experts * ffn * d), dw2(experts * ffn * d);
  bool ok = true;
  auto unfusedForward = [&] {
    ok = ok && check(cpu::linear(x.data(), tokens, d, router.as(type), experts,
                                 logits.data()));
    cpu::routerTopK(logits.data(), tokens, experts, k, true, weights.data(),
                    indices.data());
    ok = ok && check(cpu::dispatch(x.data(), indices.data(), tokens, k, experts,
                                   d, grouped.data(), counts.data(), slots.data()));
    ok = ok && check(cpu::expertMlp(grouped.data(), counts.data(), experts, d,
                                    ffn, w1.as(type), w3.as(type), w2.as(type),
                                    expertOut.data()));
    ok = ok && check(cpu::combine(expertOut.data(), weights.data(), slots.data(),
                                  tokens, k, d, out.data()));
  };
  auto unfusedBackward = [&] {
    ok = ok && check(cpu::combineGrad(expertOut.data(), weights.data(),
                                      slots.data(), tokens, k, d, dout.data(),
                                      dy.data(), dweights.data()));
    ok = ok && check(cpu::expertMlpGrad(
                   grouped.data(), counts.data(), experts, d, ffn, w1.as(type),
                   w3.as(type), w2.as(type), dy.data(), dgrouped.data(),
                   dw1.data(), dw3.data(), dw2.data()));
    ok = ok && check(cpu::dispatchGrad(dgrouped.data(), slots.data(), tokens,
                                       k, d, dx.data()));
    cpu::routerGrad(logits.data(), indices.data(), dweights.data(), nullptr,
                    tokens, experts, k, true, dlogits.data());
    ok = ok && check(cpu::linearGradInput(dlogits.data(), tokens, experts,
                                          router.as(type), d, dxRouter.data()));
    cpu::add(dx.data(), dxRouter.data(), tokens * d, dx.data());
    ok = ok && check(cpu::linearGradWeight(dlogits.data(), x.data(), tokens,
                                           experts, d, drouter.data(),
                                           type == DType::kBF16));
  };
  cpu::MoeBlockWeights block{router.as(type), w1.as(type), w3.as(type),
                             w2.as(type),     experts,      d,
                             ffn};
  auto fusedForward = [&] {
    ok = ok && check(cpu::fusedExperts(x.data(), tokens, block, k, true,
                                       out.data(), logits.data()));
  };
  // Inference repacks the experts once (PackedExperts.h); training, whose
  // weights change every step, reads them in place.
  auto packed = cpu::PackedExperts::pack(block);
  if (!check(packed.status()))
    return 1;
  cpu::MoeBlockWeights packedBlock = block;
  packedBlock.packed = packed->get();
  auto packedForward = [&] {
    ok = ok && check(cpu::fusedExperts(x.data(), tokens, packedBlock, k, true,
                                       out.data(), logits.data()));
  };
  auto fusedBackward = [&] {
    ok = ok && check(cpu::fusedExpertsGrad(
                   x.data(), tokens, block, k, true, logits.data(), dout.data(),
                   nullptr, dx.data(), drouter.data(), dw1.data(), dw3.data(),
                   dw2.data()));
  };
  double layerMs = medianMillis(repeat, unfusedForward);
  double layerTrainMs = medianMillis(repeat, [&] {
    unfusedForward();
    unfusedBackward();
  });
  double fusedMs = medianMillis(repeat, packedForward);
  double fusedUnpackedMs = medianMillis(repeat, fusedForward);
  double fusedTrainMs = medianMillis(repeat, [&] {
    fusedForward();
    fusedBackward();
  });
  if (!ok)
    return 1;

  // The weight-streaming bound: every expert that gets a token reads its
  // three matrices once, at the triad's bandwidth.
  int64_t active = 0;
  for (int64_t e = 0; e < experts; ++e)
    active += counts[e] > 0;
  double weightBytes = double(active) * 3 * ffn * d * (type == DType::kBF16 ? 2 : 4) +
                       double(experts) * d * (type == DType::kBF16 ? 2 : 4);
  double bandwidth = profile::measureTriadGbs();
  double streamingMs = weightBytes / bandwidth / 1e6;

  // The machine's GEMM rate at the expert shape, all tokens in one call.
  std::vector<float> gemmOut(tokens * ffn);
  double gemmMs = medianMillis(repeat, [&] {
    ok = ok && check(cpu::linear(x.data(), tokens, d, w1.as(type), ffn,
                                 gemmOut.data()));
  });
  if (!ok)
    return 1;

  double layerFlops = double(tokens) * (2.0 * d * experts + k * 3 * 2.0 * d * ffn);
  double gemmFlops = 2.0 * tokens * d * ffn;
  std::printf("dtype: %s\nthreads: %d\nbf16_gemm_native: %d\n", dtype.c_str(),
              omp_get_max_threads(), int(cpu::bf16MatmulIsNative()));
  std::printf("tokens: %lld\n", static_cast<long long>(tokens));
  std::printf("moe_layer_ms_median: %.3f\n", layerMs);
  std::printf("moe_layer_gflops: %.1f\n", layerFlops / layerMs / 1e6);
  std::printf("fused_moe_layer_ms_median: %.3f\n", fusedMs);
  std::printf("fused_moe_layer_gflops: %.1f\n", layerFlops / fusedMs / 1e6);
  std::printf("fused_unpacked_moe_layer_ms_median: %.3f\n", fusedUnpackedMs);
  std::printf("moe_layer_train_ms_median: %.3f\n", layerTrainMs);
  std::printf("fused_moe_layer_train_ms_median: %.3f\n", fusedTrainMs);
  std::printf("onednn_gemm_gflops: %.1f\n", gemmFlops / gemmMs / 1e6);
  std::printf("active_experts: %lld\n", static_cast<long long>(active));
  std::printf("triad_gb_per_s: %.1f\n", bandwidth);
  std::printf("weight_streaming_bound_ms: %.3f\n", streamingMs);
  return 0;
}
