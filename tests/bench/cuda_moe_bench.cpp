//===- cuda_moe_bench.cpp - the fused MoE layer on the GPU ----------------===//
//
// Times moe.fused_experts on the CUDA backend (bf16 experts, fp32
// activations, as a bf16 model runs) at Mixtral-8x7B's shapes and a
// fine-grained one, and reports TFLOP/s against the dense bf16 cuBLASLt GEMM
// rate measured in the same run (8192^3). Medians of --repeat runs, each
// synchronised. The PyTorch baselines are torch_moe_layer_cuda.py's. Then
// the forward at small to medium batches with the experts' GEMMs forced
// each way (tiled over device counts, cuBLAS over host counts).
//
// usage: cuda_moe_bench [--repeat N] [--quick]
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/base/MedianTime.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Gemm.h"
#include "tests/runtime/OneKernel.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>

namespace {
using namespace moert;

/// The median milliseconds of `body` (MedianTime.h), or -1 when it failed.
double timed(int repeat, const std::function<absl::Status()> &body) {
  bool failed = false;
  double ms = moert::medianMillis(repeat, [&] { failed |= !body().ok(); });
  return failed ? -1 : ms;
}

/// Device memory filled from one random block (repeated past its end).
absl::StatusOr<std::unique_ptr<DeviceBuffer>>
filled(Backend &backend, Stream &stream, size_t bytes, DType dtype,
       float scale, unsigned seed) {
  auto buffer = backend.allocate(bytes);
  if (!buffer.ok())
    return buffer.status();
  constexpr size_t kBlock = size_t(16) << 20;
  std::vector<uint8_t> block(std::min(bytes, kBlock));
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  size_t width = dtypeSize(dtype);
  for (size_t i = 0; i + width <= block.size(); i += width) {
    float value = normal(gen);
    if (dtype == DType::kBF16) {
      uint16_t bits = floatToBf16(value);
      std::memcpy(&block[i], &bits, 2);
    } else {
      std::memcpy(&block[i], &value, 4);
    }
  }
  auto *target = static_cast<uint8_t *>((*buffer)->data());
  for (size_t done = 0; done < bytes; done += block.size())
    if (auto s = backend.copyToDevice(block.data(), target + done,
                                      std::min(block.size(), bytes - done),
                                      stream);
        !s.ok())
      return s;
  if (auto s = stream.synchronize(); !s.ok())
    return s;
  return buffer;
}

struct Shape {
  const char *name;
  int64_t d, f, experts, k, tokens;
};

/// A tensor of the benchmark: its shape, dtype and the scale of its
/// random values (0: left uninitialised, a result).
struct Spec {
  std::vector<int64_t> dims;
  DType dtype;
  float scale;
};

/// One launch with its tensors in device memory.
struct Bound {
  std::unique_ptr<testing::OneKernel> kernel;
  KernelLaunch launch;
  std::vector<std::unique_ptr<DeviceBuffer>> memory;
};

absl::Status bind(Backend &backend, Stream &stream, fb::OpKind op,
                  std::vector<int64_t> ints, const std::vector<Spec> &operands,
                  const std::vector<TensorRef> &given,
                  const std::vector<Spec> &results, Bound &bound) {
  bound.kernel = std::make_unique<testing::OneKernel>(
      op, ints, std::vector<double>{}, given.size() + operands.size(),
      results.size());
  bound.launch.kernel = bound.kernel->kernel();
  bound.launch.operands = given;
  unsigned seed = 1 + unsigned(given.size());
  for (auto [specs, into] :
       {std::make_pair(&operands, &bound.launch.operands),
        std::make_pair(&results, &bound.launch.results)})
    for (const Spec &spec : *specs) {
      int64_t count = 1;
      for (int64_t dim : spec.dims)
        count *= dim;
      absl::StatusOr<std::unique_ptr<DeviceBuffer>> buffer =
          spec.scale > 0 ? filled(backend, stream, count * dtypeSize(spec.dtype),
                                  spec.dtype, spec.scale, seed++)
                         : backend.allocate(count * dtypeSize(spec.dtype));
      if (!buffer.ok())
        return buffer.status();
      into->push_back({(*buffer)->data(), spec.dtype, spec.dims});
      bound.memory.push_back(std::move(*buffer));
    }
  return backend.prepare(bound.launch);
}

/// The layer's forward (and, with `backward`, forward+backward) on
/// `backend`; `label` names the experts' GEMMs where they are forced.
int benchLayer(Backend &backend, const Shape &shape, int repeat, double peak,
               const std::string &label = "", bool withBackward = true) {
  std::unique_ptr<Stream> stream = backend.createStream();
  int64_t t = shape.tokens, d = shape.d, f = shape.f, e = shape.experts;
  auto fail = [&](const absl::Status &status) {
    std::printf("%s tokens %lld: %s\n", shape.name, (long long)t,
                std::string(status.message()).c_str());
    return 1;
  };
  Bound forward, backward;
  if (auto s = bind(backend, *stream, fb::OpKind::FusedExperts, {shape.k, 1},
                    {{{t, d}, DType::kF32, 1.0f},
                     {{e, d}, DType::kBF16, 0.02f},
                     {{e, f, d}, DType::kBF16, 0.02f},
                     {{e, f, d}, DType::kBF16, 0.02f},
                     {{e, d, f}, DType::kBF16, 0.02f}},
                    {}, {{{t, d}, DType::kF32, 0}, {{t, e}, DType::kF32, 0}},
                    forward);
      !s.ok())
    return fail(s);
  auto step = [&](Bound &bound) {
    if (auto s = backend.launch(bound.launch, *stream); !s.ok())
      return s;
    return stream->synchronize();
  };
  double ms = timed(repeat, [&] { return step(forward); });
  if (ms < 0)
    return fail(absl::InternalError("the forward launch failed"));
  double flops = double(t) * (2.0 * d * e + shape.k * 3 * 2.0 * d * f);
  std::printf("moe_forward%s %s d=%lld ffn=%lld experts=%lld top-%lld "
              "tokens=%lld: %.3f ms, %.1f TFLOP/s, %.1f%% of the dense bf16 "
              "GEMM rate\n",
              label.c_str(), shape.name, (long long)d, (long long)f, (long long)e,
              (long long)shape.k, (long long)t, ms, flops / ms / 1e9,
              100.0 * flops / ms / 1e9 / peak);

  if (!withBackward)
    return 0;
  // The backward from the forward's input, weights and logits.
  std::vector<TensorRef> given(forward.launch.operands.begin(),
                               forward.launch.operands.end());
  given.push_back(forward.launch.results[1]);
  if (auto s = bind(backend, *stream, fb::OpKind::FusedExpertsGrad,
                    {shape.k, 1}, {{{t, d}, DType::kF32, 1.0f}}, given,
                    {{{t, d}, DType::kF32, 0},
                     {{e, d}, DType::kF32, 0},
                     {{e, f, d}, DType::kF32, 0},
                     {{e, f, d}, DType::kF32, 0},
                     {{e, d, f}, DType::kF32, 0}},
                    backward);
      !s.ok())
    return fail(s);
  double both = timed(repeat, [&]() -> absl::Status {
    if (auto s = step(forward); !s.ok())
      return s;
    return step(backward);
  });
  if (both < 0)
    return fail(absl::InternalError("the backward launch failed"));
  // Model FLOPs (3x the forward's); the backward recomputes the hidden
  // states besides (two more expert GEMMs, not counted).
  std::printf("moe_forward_backward %s d=%lld ffn=%lld experts=%lld "
              "top-%lld tokens=%lld: %.3f ms, %.1f TFLOP/s (3x forward "
              "FLOPs), %.1f%% of the dense bf16 GEMM rate\n",
              shape.name, (long long)d, (long long)f, (long long)e,
              (long long)shape.k, (long long)t, both, 3 * flops / both / 1e9,
              100.0 * 3 * flops / both / 1e9 / peak);
  return 0;
}

/// The dense bf16 GEMM rate of cuBLASLt here (n^3, fp32 output).
double denseRate(Backend &backend, int repeat, int64_t n) {
  std::unique_ptr<Stream> stream = backend.createStream();
  auto a = filled(backend, *stream, n * n * 2, DType::kBF16, 1.0f, 91);
  auto b = filled(backend, *stream, n * n * 2, DType::kBF16, 1.0f, 92);
  auto c = backend.allocate(n * n * 4);
  auto gemm = cuda::Gemm::create(/*tf32=*/false);
  if (!a.ok() || !b.ok() || !c.ok() || !gemm.ok())
    return -1;
  cudaStream_t raw;
  if (cudaStreamCreate(&raw) != cudaSuccess)
    return -1;
  double ms = timed(repeat, [&]() -> absl::Status {
    if (auto s = (*gemm)->matmul((*a)->data(), (*b)->data(),
                                 static_cast<float *>((*c)->data()), n, n, n,
                                 DType::kBF16, raw);
        !s.ok())
      return s;
    return cudaStreamSynchronize(raw) == cudaSuccess
               ? absl::OkStatus()
               : absl::InternalError("GEMM");
  });
  cudaStreamDestroy(raw);
  return ms < 0 ? -1 : 2.0 * n * n * n / ms / 1e9;
}

} // namespace

int main(int argc, char **argv) {
  int repeat = 10;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--repeat" && i + 1 < argc)
      repeat = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--quick")
      quick = true;
  }
  auto devices = listCudaDevices();
  auto backend = createCudaBackend();
  if (!devices.ok() || !backend.ok()) {
    std::printf("SKIP: no CUDA device (%s)\n",
                std::string((backend.ok() ? devices.status() : backend.status())
                                .message())
                    .c_str());
    return 77;
  }
  std::printf("gpu: %s\n", (*devices)[0].name.c_str());
  double peak = denseRate(**backend, repeat, 8192);
  if (peak <= 0) {
    std::printf("the dense GEMM failed\n");
    return 1;
  }
  std::printf("dense_bf16_gemm 8192^3: %.1f TFLOP/s\n", peak);
  std::vector<Shape> shapes = {{"mixtral-8x7b", 4096, 14336, 8, 2, 4096},
                               {"mixtral-8x7b", 4096, 14336, 8, 2, 16384},
                               {"fine-grained", 2048, 768, 128, 8, 4096},
                               {"fine-grained", 2048, 768, 128, 8, 16384}};
  if (quick)
    shapes = {{"small", 512, 1408, 8, 2, 1024}};
  int failed = 0;
  for (const Shape &shape : shapes)
    failed += benchLayer(**backend, shape, repeat, peak);

  // The fused forward's experts both ways, from decode-sized batches up:
  // the tiled GEMMs over counts on the device (no host round trip) and
  // cuBLAS's over counts brought to the host. Where one overtakes the other
  // sets kTiledRowsPerExpert (runtime/cuda/ExpertSteps.h).
  std::vector<Shape> crossover = {{"mixtral-8x7b", 4096, 14336, 8, 2, 16},
                                  {"mixtral-8x7b", 4096, 14336, 8, 2, 256},
                                  {"mixtral-8x7b", 4096, 14336, 8, 2, 2048}};
  if (quick)
    crossover = {{"small", 512, 1408, 8, 2, 16},
                 {"small", 512, 1408, 8, 2, 1024}};
  for (ExpertGemms gemms : {ExpertGemms::kTiled, ExpertGemms::kCublas}) {
    CudaOptions options;
    options.expertGemms = gemms;
    auto forced = createCudaBackend(options);
    if (!forced.ok()) {
      std::printf("%s\n", std::string(forced.status().message()).c_str());
      return 1;
    }
    for (const Shape &shape : crossover)
      failed += benchLayer(**forced, shape, repeat, peak,
                           gemms == ExpertGemms::kTiled ? "_tiled" : "_cublas",
                           /*backward=*/false);
  }
  return failed ? 1 : 0;
}
