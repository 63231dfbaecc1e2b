//===- CudaBackendTest.cpp - every CUDA kernel against the CPU's ----------===//
//
// Each op runs through the backend contract (prepare, launch, synchronize)
// on both backends, from the same random inputs, and the results are
// compared: fp32 to fp32 rounding, bf16 to bf16's. Without a GPU (or
// driver) each test still runs its CPU half (so the cases themselves are
// known to be well formed), then skips, saying why.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/train/AdamW.h"
#include "tests/runtime/OneKernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>

namespace moert {
namespace {

struct HostTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  int64_t count() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
  float at(int64_t i) const {
    if (dtype == DType::kBF16) {
      uint16_t bits;
      std::memcpy(&bits, bytes.data() + i * 2, 2);
      return bf16ToFloat(bits);
    }
    float value;
    std::memcpy(&value, bytes.data() + i * 4, 4);
    return value;
  }
};

HostTensor randomTensor(std::vector<int64_t> shape, unsigned seed,
                        DType dtype = DType::kF32, float scale = 1.0f) {
  HostTensor t{dtype, std::move(shape), {}};
  t.bytes.resize(t.count() * dtypeSize(dtype));
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  for (int64_t i = 0; i < t.count(); ++i) {
    float value = normal(gen);
    if (dtype == DType::kBF16) {
      uint16_t bits = floatToBf16(value);
      std::memcpy(t.bytes.data() + i * 2, &bits, 2);
    } else {
      std::memcpy(t.bytes.data() + i * 4, &value, 4);
    }
  }
  return t;
}

HostTensor intTensor(std::vector<int64_t> shape, std::vector<int32_t> values) {
  HostTensor t{DType::kI32, std::move(shape), {}};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

HostTensor empty(std::vector<int64_t> shape, DType dtype = DType::kF32) {
  HostTensor t{dtype, std::move(shape), {}};
  t.bytes.resize(t.count() * dtypeSize(dtype));
  return t;
}

/// One kernel of a (fictitious) artifact.
struct Op {
  fb::OpKind op;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<HostTensor> operands;
  std::vector<HostTensor> results; // shapes and dtypes; filled by run()
  std::string stream = "";         // an initialisation op's random stream
};

/// Runs `op` on `backend`; its results, or the first failure.
absl::StatusOr<std::vector<HostTensor>> run(Backend &backend, Op op) {
  testing::OneKernel kernel(op.op, op.ints, op.floats, op.operands.size(),
                            op.results.size(), op.stream);
  KernelLaunch launch;
  launch.kernel = kernel.kernel();
  std::unique_ptr<Stream> stream = backend.createStream();
  std::vector<std::unique_ptr<DeviceBuffer>> memory;
  auto bind = [&](const HostTensor &t, bool upload) -> absl::StatusOr<TensorRef> {
    auto allocated = backend.allocate(t.bytes.size());
    if (!allocated.ok())
      return allocated.status();
    memory.push_back(std::move(*allocated));
    if (upload)
      if (auto s = backend.copyToDevice(t.bytes.data(), memory.back()->data(),
                                        t.bytes.size(), *stream);
          !s.ok())
        return s;
    return TensorRef{memory.back()->data(), t.dtype, t.shape};
  };
  for (const HostTensor &t : op.operands) {
    auto ref = bind(t, true);
    if (!ref.ok())
      return ref.status();
    launch.operands.push_back(*ref);
  }
  for (const HostTensor &t : op.results) {
    auto ref = bind(t, false);
    if (!ref.ok())
      return ref.status();
    launch.results.push_back(*ref);
  }
  if (auto s = backend.prepare(launch); !s.ok())
    return s;
  if (auto s = backend.launch(launch, *stream); !s.ok())
    return s;
  if (auto s = stream->synchronize(); !s.ok())
    return s;
  for (size_t i = 0; i < op.results.size(); ++i)
    if (auto s = backend.copyToHost(launch.results[i].data,
                                    op.results[i].bytes.data(),
                                    op.results[i].bytes.size(), *stream);
        !s.ok())
      return s;
  return op.results;
}

class CudaBackendTest : public ::testing::Test {
protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Backend>> created = createCudaBackend();
    if (created.ok())
      cuda = std::move(*created);
    else
      noGpu = std::string(created.status().message());
  }

  /// Runs `op` on both backends and compares result `index` (fp32):
  /// ||cuda - cpu|| / ||cpu|| <= tolerance.
  /// Runs `op` on the GPU (there must be one) and expects it to fail with
  /// `message`.
  void expectCudaError(const Op &op, const char *message) {
    auto result = run(*cuda, op);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().message(), message);
  }

  void expectAgree(const Op &op, double tolerance, size_t index = 0) {
    auto onCpu = run(*cpu, op);
    ASSERT_TRUE(onCpu.ok()) << onCpu.status();
    if (!cuda)
      GTEST_SKIP() << "no GPU to test on: " << noGpu;
    auto onCuda = run(*cuda, op);
    ASSERT_TRUE(onCuda.ok()) << onCuda.status();
    const HostTensor &want = (*onCpu)[index], &got = (*onCuda)[index];
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < want.count(); ++i) {
      ASSERT_TRUE(std::isfinite(got.at(i))) << "element " << i;
      diff += std::pow(double(got.at(i)) - want.at(i), 2);
      norm += std::pow(double(want.at(i)), 2);
    }
    EXPECT_LE(std::sqrt(diff), tolerance * std::sqrt(norm))
        << fb::EnumNameOpKind(op.op) << " result " << index;
  }

  std::unique_ptr<Backend> cpu = createCpuBackend();
  std::unique_ptr<Backend> cuda; // null without a GPU, which noGpu explains
  std::string noGpu;

  /// The CUDA backend again, running fused forwards' experts as `gemms`
  /// says (the tiled GEMMs or cuBLAS's, whatever the batch).
  void useExpertGemms(ExpertGemms gemms) {
    if (!cuda)
      return;
    CudaOptions options;
    options.expertGemms = gemms;
    absl::StatusOr<std::unique_ptr<Backend>> created =
        createCudaBackend(options);
    ASSERT_TRUE(created.ok()) << created.status();
    cuda = std::move(*created);
  }
};

TEST_F(CudaBackendTest, Elementwise) {
  std::vector<int64_t> shape = {3, 7, 53};
  HostTensor a = randomTensor(shape, 1, DType::kF32, 3.0f),
             b = randomTensor(shape, 2);
  for (fb::OpKind op : {fb::OpKind::Add, fb::OpKind::Mul, fb::OpKind::Swiglu})
    expectAgree({op, {}, {}, {a, b}, {empty(shape)}}, 1e-6);
  expectAgree({fb::OpKind::Silu, {}, {}, {a}, {empty(shape)}}, 1e-6);
  expectAgree({fb::OpKind::Clamp, {}, {1.5}, {a}, {empty(shape)}}, 0);
  expectAgree({fb::OpKind::Scale, {}, {0.25}, {a}, {empty(shape)}}, 0);
  expectAgree({fb::OpKind::AddBias, {}, {},
               {a, randomTensor({53}, 3, DType::kBF16)}, {empty(shape)}},
              1e-7);
  expectAgree({fb::OpKind::SigmoidGate, {}, {},
               {a, randomTensor({3, 7, 1}, 4)}, {empty(shape)}},
              1e-6);
}

TEST_F(CudaBackendTest, EmbeddingAndItsOutOfRangeIds) {
  HostTensor table = randomTensor({11, 37}, 5, DType::kBF16);
  HostTensor ids = intTensor({2, 3}, {0, 10, 3, 3, 7, 1});
  expectAgree({fb::OpKind::Embedding, {}, {}, {table, ids}, {empty({2, 3, 37})}},
              0);
  if (!cuda)
    GTEST_SKIP() << "no GPU to test on: " << noGpu;
  HostTensor bad = intTensor({2, 3}, {0, 1, 2, 11, 4, 5});
  expectCudaError(
      {fb::OpKind::Embedding, {}, {}, {table, bad}, {empty({2, 3, 37})}},
      "test.mlir:1:1: token id 11 at position 3 is outside the "
      "vocabulary [0, 11)");
  // The fault is cleared: the next run is clean.
  EXPECT_TRUE(run(*cuda, {fb::OpKind::Embedding, {}, {}, {table, ids},
                          {empty({2, 3, 37})}})
                  .ok());
}

// An expert index out of range leaves dispatch's counts short of its rows,
// which fails the launch; the error names the index, the fault's cause,
// and the next run is clean.
TEST_F(CudaBackendTest, DispatchOfAnExpertOutOfRange) {
  HostTensor x = randomTensor({1, 3, 8}, 64);
  auto dispatch = [&](std::vector<int32_t> choice) {
    return Op{
        fb::OpKind::Dispatch,
        {4},
        {},
        {x, intTensor({1, 3, 2}, choice)},
        {empty({6, 8}), empty({4}, DType::kI64), empty({6}, DType::kI32)}};
  };
  Op bad = dispatch({0, 1, 2, 5, 3, 0}), good = dispatch({0, 1, 2, 3, 3, 0});
  ASSERT_FALSE(run(*cpu, bad).ok());
  ASSERT_TRUE(run(*cpu, good).ok());
  if (!cuda)
    GTEST_SKIP() << "no GPU to test on: " << noGpu;
  expectCudaError(bad,
                  "test.mlir:1:1: expert index 5 of slot 3 is outside [0, 4)");
  EXPECT_TRUE(run(*cuda, good).ok());
}

TEST_F(CudaBackendTest, RmsNormAndRope) {
  HostTensor x = randomTensor({2, 5, 1000}, 6, DType::kF32, 2.0f);
  for (DType w : {DType::kF32, DType::kBF16})
    expectAgree({fb::OpKind::RmsNorm, {}, {1e-5},
                 {x, randomTensor({1000}, 7, w)}, {empty({2, 5, 1000})}},
                1e-6);
  // Per-head norm: groups of 100 features.
  expectAgree({fb::OpKind::RmsNorm, {}, {1e-6}, {x, randomTensor({100}, 8)},
               {empty({2, 5, 1000})}},
              1e-6);
  HostTensor q = randomTensor({2, 9, 4 * 64}, 9);
  for (int64_t inverse : {0, 1}) {
    expectAgree({fb::OpKind::Rope, {4, inverse}, {10000.0}, {q},
                 {empty({2, 9, 256})}},
                1e-6);
    expectAgree({fb::OpKind::Rope, {4, inverse}, {500000.0},
                 {q, intTensor({2, 9}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 200,
                                        3000, 4, 5, 40000, 7, 8, 9})},
                 {empty({2, 9, 256})}},
                1e-5);
  }
}

TEST_F(CudaBackendTest, LinearFp32AndBf16) {
  for (int64_t m : {1, 7, 300}) {
    HostTensor x = randomTensor({m, 64}, 10);
    expectAgree({fb::OpKind::Linear, {}, {}, {x, randomTensor({40, 64}, 11)},
                 {empty({m, 40})}},
                1e-6);
    expectAgree({fb::OpKind::Linear, {}, {},
                 {x, randomTensor({40, 64}, 12, DType::kBF16)},
                 {empty({m, 40})}},
                1e-2);
  }
}

TEST_F(CudaBackendTest, Attention) {
  for (int64_t headDim : {64, 128})
    for (int64_t causal : {1, 0}) {
      int64_t batch = 2, seq = 45, heads = 4, kvHeads = 2;
      HostTensor q = randomTensor({batch, seq, heads * headDim}, 13),
                 k = randomTensor({batch, seq, kvHeads * headDim}, 14),
                 v = randomTensor({batch, seq, kvHeads * headDim}, 15);
      expectAgree({fb::OpKind::Attention, {heads, kvHeads, causal},
                   {1.0 / std::sqrt(double(headDim))}, {q, k, v},
                   {empty({batch, seq, heads * headDim})}},
                  1e-5);
    }
}

// Activations a bf16 model stores as bf16 (runtime/artifact/
// Bf16Activations.h): the CUDA linear layers and weight gradients read and
// write them as they are, its other kernels through fp32 views; both
// backends round the results they store.
TEST_F(CudaBackendTest, Bf16StoredActivations) {
  // A linear layer takes each of its input and result stored either way.
  HostTensor w = randomTensor({40, 64}, 17, DType::kBF16);
  for (DType input : {DType::kBF16, DType::kF32})
    for (DType result : {DType::kBF16, DType::kF32})
      expectAgree({fb::OpKind::Linear, {}, {},
                   {randomTensor({70, 64}, 16, input), w},
                   {empty({70, 40}, result)}},
                  1e-2);
  // A decode step's shape, one row and a deep sum, where cuBLASLt may split
  // the sum: its bf16 result must still be the fp32 sum rounded once (to
  // about one bf16 rounding: 2^-9 relative).
  expectAgree({fb::OpKind::Linear,
               {},
               {},
               {randomTensor({1, 4096}, 24, DType::kBF16),
                randomTensor({64, 4096}, 25, DType::kBF16)},
               {empty({1, 64}, DType::kBF16)}},
              4e-3);
  // The weight's gradient reads its input either way when its products are
  // bf16 (attribute 1), and through the view when they are fp32.
  HostTensor dy = randomTensor({70, 40}, 23);
  for (auto [bf16, input] :
       {std::pair{1, DType::kBF16}, {1, DType::kF32}, {0, DType::kBF16}})
    expectAgree({fb::OpKind::LinearGradWeight,
                 {bf16},
                 {},
                 {dy, randomTensor({70, 64}, 16, input)},
                 {empty({40, 64})}},
                bf16 ? 1e-2 : 1e-6);
  int64_t batch = 2, seq = 33, heads = 4, kvHeads = 2, headDim = 64;
  HostTensor q = randomTensor({batch, seq, heads * headDim}, 18, DType::kBF16),
             k = randomTensor({batch, seq, kvHeads * headDim}, 19, DType::kBF16),
             v = randomTensor({batch, seq, kvHeads * headDim}, 20, DType::kBF16);
  // A scale that is not a power of two: rounding scale * k would differ.
  expectAgree({fb::OpKind::Attention, {heads, kvHeads, 1, 1}, {0.3},
               {q, k, v}, {empty({batch, seq, heads * headDim}, DType::kBF16)}},
              1e-2);
  HostTensor rows = randomTensor({3, 11, 64}, 21);
  expectAgree({fb::OpKind::RmsNorm, {}, {1e-6},
               {rows, randomTensor({64}, 22, DType::kBF16)},
               {empty({3, 11, 64}, DType::kBF16)}},
              1e-2);
}

TEST_F(CudaBackendTest, RouterTopK) {
  for (int64_t experts : {3, 8, 64})
    for (int64_t k : {1, 2}) {
      HostTensor x = randomTensor({2, 17, 32}, 16);
      Op op{fb::OpKind::Router, {k, 1}, {}, {x, randomTensor({experts, 32}, 17)},
            {empty({2, 17, experts}), empty({2, 17, k}),
             empty({2, 17, k}, DType::kI32)}};
      expectAgree(op, 1e-6, 0);
      expectAgree(op, 1e-6, 1);
      if (!cuda)
        return;
      auto onCpu = run(*cpu, op), onCuda = run(*cuda, op);
      ASSERT_TRUE(onCpu.ok() && onCuda.ok());
      EXPECT_EQ((*onCpu)[2].bytes, (*onCuda)[2].bytes) << "expert choices";
    }
}

/// A fused MoE block of `experts` experts of width f over [2, tokens, d],
/// its experts in `dtype`. The router stays fp32: where the CPU has no
/// native bf16 GEMM it does not round the router's input as the GPU does,
/// and a near tie could then route a token differently.
Op fusedBlock(int64_t tokens, int64_t experts, int64_t k, DType dtype,
              unsigned seed, int64_t d = 48, int64_t f = 40) {
  return {fb::OpKind::FusedExperts,
          {k, 1},
          {},
          {randomTensor({2, tokens, d}, seed),
           randomTensor({experts, d}, seed + 1),
           randomTensor({experts, f, d}, seed + 2, dtype),
           randomTensor({experts, f, d}, seed + 3, dtype),
           randomTensor({experts, d, f}, seed + 4, dtype)},
          {empty({2, tokens, d}), empty({2, tokens, experts})}};
}

// bf16 experts both ways: the tiled GEMMs over counts on the device and
// cuBLAS's over counts on the host.
TEST_F(CudaBackendTest, FusedExperts) {
  for (ExpertGemms gemms : {ExpertGemms::kTiled, ExpertGemms::kCublas}) {
    SCOPED_TRACE(gemms == ExpertGemms::kTiled ? "tiled" : "cublas");
    useExpertGemms(gemms);
    for (int64_t experts : {3, 4, 8, 64})
      for (int64_t k : {1, 2}) {
        // 3 tokens of 64 experts leave most experts without rows; 150 give
        // an expert several row tiles.
        for (int64_t tokens : {int64_t(3), int64_t(50), int64_t(150)}) {
          expectAgree(fusedBlock(tokens, experts, k, DType::kF32, 20), 1e-5);
          expectAgree(fusedBlock(tokens, experts, k, DType::kBF16, 30), 2e-2);
        }
      }
    // Widths past one 64-column tile and off its multiples: several column
    // tiles, the last partial, in both GEMMs.
    expectAgree(fusedBlock(40, 8, 2, DType::kBF16, 31, /*d=*/136, /*f=*/200),
                2e-2);
  }
}

TEST_F(CudaBackendTest, FusedExpertsWhereOneExpertGetsEveryRow) {
  // A zero router makes every logit 0: ties go to the lowest experts, so
  // experts 0 and 1 get every row and the other six none.
  Op op = fusedBlock(20, 8, 2, DType::kF32, 40);
  std::fill(op.operands[1].bytes.begin(), op.operands[1].bytes.end(), 0);
  expectAgree(op, 1e-6);
  // bf16 experts as the tiled GEMMs: 200 rows each, in 4 row tiles.
  useExpertGemms(ExpertGemms::kTiled);
  Op tiled = fusedBlock(100, 8, 2, DType::kBF16, 41);
  std::fill(tiled.operands[1].bytes.begin(), tiled.operands[1].bytes.end(), 0);
  expectAgree(tiled, 2e-2);
}

TEST_F(CudaBackendTest, TheUnfusedChain) {
  // dispatch, expert_mlp and combine, each from the same inputs.
  int64_t tokens = 13, d = 24, f = 16;
  for (int64_t experts : {3, 8})
    for (int64_t k : {1, 2}) {
      std::vector<int32_t> choice;
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t j = 0; j < k; ++j) // distinct experts per token
          choice.push_back(int32_t((t * 7 + j * 3) % experts));
      if (k == 2)
        for (int64_t t = 0; t < tokens; ++t)
          if (choice[2 * t] == choice[2 * t + 1])
            choice[2 * t + 1] = (choice[2 * t + 1] + 1) % experts;
      HostTensor x = randomTensor({1, tokens, d}, 60),
                 indices = intTensor({1, tokens, k}, choice);
      Op dispatch{fb::OpKind::Dispatch, {experts}, {}, {x, indices},
                  {empty({tokens * k, d}), empty({experts}, DType::kI64),
                   empty({tokens * k}, DType::kI32)}};
      for (size_t i : {0, 1, 2}) {
        auto onCpu = run(*cpu, dispatch);
        ASSERT_TRUE(onCpu.ok()) << onCpu.status();
        if (!cuda)
          break; // the CPU halves of the other ops still run
        auto onCuda = run(*cuda, dispatch);
        ASSERT_TRUE(onCuda.ok()) << onCuda.status();
        EXPECT_EQ((*onCpu)[i].bytes, (*onCuda)[i].bytes) << "dispatch " << i;
      }
      auto grouped = run(*cpu, dispatch);
      ASSERT_TRUE(grouped.ok());
      for (DType dtype : {DType::kF32, DType::kBF16})
        expectAgree({fb::OpKind::ExpertMlp, {}, {},
                     {(*grouped)[0], (*grouped)[1],
                      randomTensor({experts, f, d}, 61, dtype),
                      randomTensor({experts, f, d}, 62, dtype),
                      randomTensor({experts, d, f}, 63, dtype)},
                     {empty({tokens * k, d})}},
                    dtype == DType::kF32 ? 1e-5 : 2e-2);
      expectAgree({fb::OpKind::Combine, {}, {},
                   {randomTensor({tokens * k, d}, 64),
                    randomTensor({1, tokens, k}, 65), (*grouped)[2]},
                   {empty({1, tokens, d})}},
                  1e-6);
    }
}

TEST_F(CudaBackendTest, GenerationOps) {
  int64_t batch = 2, rows = 3, capacity = 40, heads = 4, kvHeads = 2,
          headDim = 64;
  // Positions past the prompt, one negative (a padded row: no write, zeros).
  HostTensor positions = intTensor({batch, rows}, {5, 6, 39, -1, 0, 1});
  HostTensor cache = randomTensor({batch, capacity, kvHeads * headDim}, 70);
  HostTensor written = randomTensor({batch, rows, kvHeads * headDim}, 71);
  Op write{fb::OpKind::CacheWrite, {}, {}, {cache, written, positions}, {}};
  // The cache is an operand written in place: compare it after the write.
  auto runWrite = [&](Backend &backend) -> absl::StatusOr<HostTensor> {
    testing::OneKernel kernel(write.op, {}, {}, 3, 0);
    std::unique_ptr<Stream> stream = backend.createStream();
    std::vector<std::unique_ptr<DeviceBuffer>> memory;
    KernelLaunch launch;
    launch.kernel = kernel.kernel();
    for (const HostTensor &t : write.operands) {
      auto buffer = backend.allocate(t.bytes.size());
      if (!buffer.ok())
        return buffer.status();
      if (auto s = backend.copyToDevice(t.bytes.data(), (*buffer)->data(),
                                        t.bytes.size(), *stream);
          !s.ok())
        return s;
      launch.operands.push_back({(*buffer)->data(), t.dtype, t.shape});
      memory.push_back(std::move(*buffer));
    }
    if (auto s = backend.prepare(launch); !s.ok())
      return s;
    if (auto s = backend.launch(launch, *stream); !s.ok())
      return s;
    if (auto s = stream->synchronize(); !s.ok())
      return s;
    HostTensor after = cache;
    if (auto s = backend.copyToHost(launch.operands[0].data, after.bytes.data(),
                                    after.bytes.size(), *stream);
        !s.ok())
      return s;
    return after;
  };
  auto cpuCache = runWrite(*cpu);
  ASSERT_TRUE(cpuCache.ok()) << cpuCache.status();
  HostTensor q = randomTensor({batch, rows, heads * headDim}, 72);
  Op attend{fb::OpKind::CachedAttention,
            {heads, kvHeads, 0},
            {0.125},
            {q, positions, *cpuCache, randomTensor(cache.shape, 73)},
            {empty({batch, rows, heads * headDim})}};
  expectAgree(attend, 1e-5);
  // Any negative position gives its row zeros, and only its row.
  attend.operands[1] = intTensor({batch, rows}, {5, -3, 39, -1, 0, 1});
  expectAgree(attend, 1e-5);
  expectAgree({fb::OpKind::SelectRows, {}, {},
               {q, intTensor({batch, 2}, {2, 0, 1, 1})},
               {empty({batch, 2, heads * headDim})}},
              0);
  if (!cuda)
    GTEST_SKIP() << "no GPU to test on: " << noGpu;
  auto cudaCache = runWrite(*cuda);
  ASSERT_TRUE(cudaCache.ok()) << cudaCache.status();
  EXPECT_EQ(cpuCache->bytes, cudaCache->bytes);
  // A position past the capacity, in the CPU's words.
  write.operands[2] = intTensor({batch, rows}, {5, 6, 40, 0, 0, 1});
  auto past = runWrite(*cuda);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.status().message(), "test.mlir:1:1: position 40 of sequence "
                                     "0 is past the cache capacity 40");
}

/// Runs `op` on both backends and compares every result.
#define EXPECT_ALL_AGREE(op, tolerance)                                        \
  for (size_t result = 0; result < (op).results.size(); ++result)              \
    expectAgree(op, tolerance, result)

TEST_F(CudaBackendTest, Backward) {
  std::vector<int64_t> shape = {2, 9, 100};
  HostTensor x = randomTensor(shape, 80, DType::kF32, 3.0f),
             dy = randomTensor(shape, 81), up = randomTensor(shape, 82);
  EXPECT_ALL_AGREE((Op{fb::OpKind::SiluGrad, {}, {}, {x, dy}, {empty(shape)}}),
                   1e-6);
  EXPECT_ALL_AGREE((Op{fb::OpKind::ClampGrad, {}, {2.0}, {x, dy},
                       {empty(shape)}}),
                   0);
  EXPECT_ALL_AGREE((Op{fb::OpKind::SwigluGrad, {}, {}, {x, up, dy},
                       {empty(shape), empty(shape)}}),
                   1e-6);
  EXPECT_ALL_AGREE((Op{fb::OpKind::SigmoidGateGrad, {}, {},
                       {x, randomTensor({2, 9, 1}, 83), dy},
                       {empty(shape), empty({2, 9, 1})}}),
                   1e-6);
  EXPECT_ALL_AGREE((Op{fb::OpKind::BiasGrad, {}, {}, {dy}, {empty({100})}}),
                   1e-6);
  for (int64_t group : {100, 20}) // whole rows, and per-head norms
    for (DType w : {DType::kF32, DType::kBF16})
      EXPECT_ALL_AGREE((Op{fb::OpKind::RmsNormGrad, {}, {1e-5},
                           {x, randomTensor({group}, 84, w), dy},
                           {empty(shape), empty({group})}}),
                       1e-5);
  HostTensor ids = intTensor({2, 9}, {0, 5, 5, 3, 9, 0, 1, 2, 2,
                                      7, 7, 7, 0, 4, 6, 8, 9, 1});
  EXPECT_ALL_AGREE((Op{fb::OpKind::EmbeddingGrad, {}, {}, {dy, ids},
                       {empty({12, 100})}}),
                   1e-6);
}

TEST_F(CudaBackendTest, AttentionBackward) {
  for (int64_t headDim : {64, 128})
    for (int64_t causal : {1, 0}) {
      int64_t batch = 2, seq = 45, heads = 4, kvHeads = 2;
      std::vector<int64_t> qShape = {batch, seq, heads * headDim},
                           kvShape = {batch, seq, kvHeads * headDim};
      EXPECT_ALL_AGREE(
          (Op{fb::OpKind::AttentionGrad,
              {heads, kvHeads, causal},
              {1.0 / std::sqrt(double(headDim))},
              {randomTensor(qShape, 100), randomTensor(kvShape, 101),
               randomTensor(kvShape, 102), randomTensor(qShape, 103)},
              {empty(qShape), empty(kvShape), empty(kvShape)}}),
          1e-5);
    }
}

TEST_F(CudaBackendTest, DispatchAndCombineBackward) {
  int64_t tokens = 11, k = 2, d = 20, slots = tokens * k;
  std::vector<int32_t> order;
  for (int64_t r = 0; r < slots; ++r) // a permutation of the slots
    order.push_back(int32_t((r * 7) % slots));
  HostTensor sourceSlots = intTensor({slots}, order);
  expectAgree({fb::OpKind::DispatchGrad, {k}, {},
               {randomTensor({slots, d}, 104), sourceSlots},
               {empty({1, tokens, d})}},
              1e-6);
  EXPECT_ALL_AGREE((Op{fb::OpKind::CombineGrad, {}, {},
                       {randomTensor({slots, d}, 105),
                        randomTensor({1, tokens, k}, 106), sourceSlots,
                        randomTensor({1, tokens, d}, 107)},
                       {empty({slots, d}), empty({1, tokens, k})}}),
                   1e-6);
}

TEST_F(CudaBackendTest, LinearBackward) {
  for (int64_t m : {1, 37, 300}) {
    HostTensor dy = randomTensor({m, 40}, 85), x = randomTensor({m, 64}, 86);
    for (DType w : {DType::kF32, DType::kBF16})
      expectAgree({fb::OpKind::LinearGradInput, {}, {},
                   {dy, randomTensor({40, 64}, 87, w)}, {empty({m, 64})}},
                  w == DType::kF32 ? 1e-6 : 1e-2);
    for (int64_t bf16 : {0, 1})
      expectAgree({fb::OpKind::LinearGradWeight, {bf16}, {}, {dy, x},
                   {empty({40, 64})}},
                  bf16 ? 1e-2 : 1e-6);
  }
}

TEST_F(CudaBackendTest, RouterAndLosses) {
  int64_t tokens = 17, experts = 8, k = 2, vocab = 50;
  HostTensor logits = randomTensor({1, tokens, experts}, 88, DType::kF32, 2.0f);
  Op route{fb::OpKind::Router, {k, 1}, {},
           {randomTensor({1, tokens, 16}, 89), randomTensor({experts, 16}, 90)},
           {empty({1, tokens, experts}), empty({1, tokens, k}),
            empty({1, tokens, k}, DType::kI32)}};
  auto routed = run(*cpu, route);
  ASSERT_TRUE(routed.ok()) << routed.status();
  for (int64_t normalize : {0, 1})
    expectAgree({fb::OpKind::RouterGrad, {k, normalize}, {},
                 {(*routed)[0], (*routed)[2], randomTensor({1, tokens, k}, 91),
                  randomTensor({1, tokens, experts}, 92)},
                 {empty({1, tokens, experts})}},
                1e-6);
  // Labels with ignored rows (-100), as the losses' mask.
  std::vector<int32_t> labelIds;
  for (int64_t t = 0; t < tokens; ++t)
    labelIds.push_back(t % 5 == 4 ? -100 : int32_t(t * 3 % vocab));
  HostTensor labels = intTensor({1, tokens}, labelIds);
  HostTensor vocabLogits = randomTensor({1, tokens, vocab}, 93, DType::kF32, 3.0f);
  HostTensor dloss = randomTensor({}, 94);
  expectAgree({fb::OpKind::CrossEntropy, {-100}, {}, {vocabLogits, labels},
               {empty({})}},
              1e-6);
  expectAgree({fb::OpKind::CrossEntropyGrad, {-100}, {},
               {vocabLogits, labels, dloss}, {empty({1, tokens, vocab})}},
              1e-6);
  HostTensor second = randomTensor({1, tokens, experts}, 95, DType::kF32, 2.0f);
  expectAgree({fb::OpKind::LoadBalancingLoss, {k, -100}, {},
               {labels, logits, second}, {empty({})}},
              1e-6);
  EXPECT_ALL_AGREE((Op{fb::OpKind::LoadBalancingLossGrad, {k, -100}, {},
                       {labels, logits, second, dloss},
                       {empty(logits.shape), empty(second.shape)}}),
                   1e-6);
  expectAgree({fb::OpKind::RouterZLoss, {-100}, {}, {labels, logits, second},
               {empty({})}},
              1e-6);
  EXPECT_ALL_AGREE((Op{fb::OpKind::RouterZLossGrad, {-100}, {},
                       {labels, logits, second, dloss},
                       {empty(logits.shape), empty(second.shape)}}),
                   1e-6);
  if (!cuda)
    GTEST_SKIP() << "no GPU to test on: " << noGpu;
  labelIds[3] = int32_t(vocab);
  expectCudaError({fb::OpKind::CrossEntropy,
                   {-100},
                   {},
                   {vocabLogits, intTensor({1, tokens}, labelIds)},
                   {empty({})}},
                  "test.mlir:1:1: label 50 at position 3 is outside the "
                  "vocabulary [0, 50)");
}

TEST_F(CudaBackendTest, FusedExpertsTrainingOps) {
  int64_t batch = 2, seq = 7, d = 48, f = 40;
  // Sequence 0 ends in three unlabelled tokens (skipped by the experts);
  // sequence 1 is labelled to its end.
  std::vector<int32_t> labelIds = {1, 2, 3, 4, -100, -100, -100,
                                   5, -100, 6, 7, 8, 9, 10};
  HostTensor labels = intTensor({batch, seq}, labelIds);
  for (ExpertGemms gemms : {ExpertGemms::kTiled, ExpertGemms::kCublas})
    for (int64_t experts : {4, 8})
      for (int64_t k : {1, 2})
        for (DType dtype : {DType::kF32, DType::kBF16}) {
          SCOPED_TRACE(gemms == ExpertGemms::kTiled ? "tiled" : "cublas");
          useExpertGemms(gemms);
          double tolerance = dtype == DType::kF32 ? 1e-5 : 2e-2;
          Op forward = fusedBlock(seq, experts, k, dtype, 110);
          // With labels: the skipped tokens' rows stay zero.
          Op labelled = forward;
          labelled.ints = {k, 1, 1, -100};
          labelled.operands.push_back(labels);
          EXPECT_ALL_AGREE(labelled, tolerance);
          // Keeping the hidden states, results 2 and 3 by grouped row: without
          // labels, so that every row is written.
          Op kept = forward;
          kept.op = fb::OpKind::FusedExpertsTrain;
          kept.results.push_back(empty({batch * seq * k, f}));
          kept.results.push_back(empty({batch * seq * k, f}));
          EXPECT_ALL_AGREE(kept, tolerance);
          kept.ints = labelled.ints;
          kept.operands.push_back(labels);
          auto forwardOnCpu = run(*cpu, kept);
          ASSERT_TRUE(forwardOnCpu.ok()) << forwardOnCpu.status();
          // The backward: recomputing, with the router losses' logits
          // gradient, and from the kept hidden states.
          const HostTensor &logits = (*forwardOnCpu)[1];
          HostTensor dout = randomTensor({batch, seq, d}, 111);
          Op grad{fb::OpKind::FusedExpertsGrad,
                  {k, 1, 1, -100},
                  {},
                  {forward.operands[0], forward.operands[1],
                   forward.operands[2], forward.operands[3],
                   forward.operands[4], logits, dout},
                  {empty({batch, seq, d}), empty({experts, d}),
                   empty({experts, f, d}), empty({experts, f, d}),
                   empty({experts, d, f})}};
          Op plain = grad;
          plain.ints = {k, 1};
          EXPECT_ALL_AGREE(plain, tolerance);
          Op withLogitsGrad = grad;
          withLogitsGrad.operands.push_back(
              randomTensor({batch, seq, experts}, 112));
          withLogitsGrad.operands.push_back(labels);
          EXPECT_ALL_AGREE(withLogitsGrad, tolerance);
          Op fromKept = grad;
          fromKept.operands.push_back(labels);
          fromKept.operands.push_back((*forwardOnCpu)[2]);
          fromKept.operands.push_back((*forwardOnCpu)[3]);
          EXPECT_ALL_AGREE(fromKept, tolerance);
        }
}

TEST_F(CudaBackendTest, ExpertMlpTrainingOps) {
  int64_t experts = 4, d = 24, f = 16;
  HostTensor counts{DType::kI64, {experts}, {}};
  std::vector<int64_t> perExpert = {5, 0, 9, 1};
  counts.bytes.resize(experts * 8);
  std::memcpy(counts.bytes.data(), perExpert.data(), counts.bytes.size());
  int64_t rows = 15;
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    double tolerance = dtype == DType::kF32 ? 1e-5 : 2e-2;
    HostTensor grouped = randomTensor({rows, d}, 120),
               gate = randomTensor({experts, f, d}, 121, dtype),
               up = randomTensor({experts, f, d}, 122, dtype),
               down = randomTensor({experts, d, f}, 123, dtype);
    Op train{fb::OpKind::ExpertMlpTrain, {}, {},
             {grouped, counts, gate, up, down},
             {empty({rows, d}), empty({rows, f}), empty({rows, f})}};
    EXPECT_ALL_AGREE(train, tolerance);
    auto kept = run(*cpu, train);
    ASSERT_TRUE(kept.ok()) << kept.status();
    Op grad{fb::OpKind::ExpertMlpGrad, {}, {},
            {grouped, counts, gate, up, down, randomTensor({rows, d}, 124)},
            {empty({rows, d}), empty({experts, f, d}), empty({experts, f, d}),
             empty({experts, d, f})}};
    EXPECT_ALL_AGREE(grad, tolerance);
    grad.operands.push_back((*kept)[1]);
    grad.operands.push_back((*kept)[2]);
    EXPECT_ALL_AGREE(grad, tolerance);
  }
}

/// A launch of an initialisation op draws from the stream of this name.
Op drawing(Op op) {
  op.stream = "model.layers.0.mlp.experts.*.w1.weight";
  return op;
}

TEST_F(CudaBackendTest, InitialisationOps) {
  int64_t rows = 40, cols = 24;
  HostTensor x = randomTensor({rows, cols}, 130);
  Op indices = drawing({fb::OpKind::RandomIndices, {10, rows, 77}, {}, {},
                        {empty({10}, DType::kI64)}});
  auto chosen = run(*cpu, indices);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  for (int64_t axis : {0, 1}) {
    Op columns = indices;
    columns.ints = {10, axis == 0 ? rows : cols, 77};
    auto picked = run(*cpu, columns);
    ASSERT_TRUE(picked.ok());
    Op moments{fb::OpKind::SliceMoments, {axis}, {}, {x, (*picked)[0]},
               {empty({}), empty({})}};
    EXPECT_ALL_AGREE(moments, 1e-6);
    auto stats = run(*cpu, moments);
    ASSERT_TRUE(stats.ok());
    expectAgree(drawing({fb::OpKind::ResampleSlice, {axis, 5}, {},
                         {x, (*picked)[0], (*stats)[0], (*stats)[1]},
                         {empty({rows, cols})}}),
                1e-6);
    expectAgree(drawing({fb::OpKind::AddNoiseSlice, {axis, 5}, {0.01},
                         {x, (*picked)[0]}, {empty({rows, cols})}}),
                1e-6);
    expectAgree({fb::OpKind::Slice, {axis, 3}, {}, {x},
                 {empty(axis == 0 ? std::vector<int64_t>{7, cols}
                                  : std::vector<int64_t>{rows, 7})}},
                0);
  }
  for (int64_t centered : {0, 1})
    expectAgree(drawing({fb::OpKind::RandomTensor, {9, centered}, {0.02}, {},
                         {empty({33, 17})}}),
                1e-6);
  expectAgree({fb::OpKind::Stack, {}, {},
               {randomTensor({5, 3}, 131), randomTensor({5, 3}, 132)},
               {empty({2, 5, 3})}},
              0);
  if (!cuda)
    GTEST_SKIP() << "no GPU to test on: " << noGpu;
  auto onCuda = run(*cuda, indices);
  ASSERT_TRUE(onCuda.ok()) << onCuda.status();
  EXPECT_EQ((*chosen)[0].bytes, (*onCuda)[0].bytes) << "the random subset";
}

TEST_F(CudaBackendTest, DeviceOptimizerIsTheHostsAdamW) {
  if (!cuda)
    GTEST_SKIP() << "no GPU to test on: " << noGpu;
  DeviceOptimizer *optimizer = cuda->optimizer();
  ASSERT_NE(optimizer, nullptr);
  int64_t n = 100003;
  HostTensor master = randomTensor({n}, 150), grad = randomTensor({n}, 151);
  std::vector<float> expected(n);
  std::memcpy(expected.data(), master.bytes.data(), n * 4);
  train::OptimizerOptions options;
  train::AdamState state;
  std::unique_ptr<Stream> stream = cuda->createStream();
  std::vector<std::unique_ptr<DeviceBuffer>> memory;
  auto upload = [&](const void *data, size_t bytes) -> void * {
    auto buffer = cuda->allocate(bytes);
    EXPECT_TRUE(buffer.ok());
    EXPECT_TRUE(cuda->copyToDevice(data, (*buffer)->data(), bytes, *stream).ok());
    memory.push_back(std::move(*buffer));
    return memory.back()->data();
  };
  auto *dMaster = static_cast<float *>(upload(master.bytes.data(), n * 4));
  auto *dGrad = static_cast<float *>(upload(grad.bytes.data(), n * 4));
  auto *dM = static_cast<float *>(upload(expected.data(), n * 4));
  auto *dV = static_cast<float *>(upload(expected.data(), n * 4));
  auto *dCopy = upload(expected.data(), n * 2);
  ASSERT_TRUE(optimizer->zero(dM, n, *stream).ok());
  ASSERT_TRUE(optimizer->zero(dV, n, *stream).ok());
  std::vector<uint16_t> hostCopy(n);
  for (int64_t step = 1; step <= 3; ++step) {
    train::adamwUpdate(expected.data(),
                       reinterpret_cast<const float *>(grad.bytes.data()),
                       state, n, true, 1e-3, step, 0.5, options,
                       hostCopy.data());
    ASSERT_TRUE(optimizer
                    ->adamw(dMaster, dGrad, dM, dV, n,
                            train::adamwStep(true, 1e-3, step, 0.5, options),
                            dCopy, DType::kBF16, *stream)
                    .ok());
  }
  std::vector<float> ours(n);
  std::vector<uint16_t> oursCopy(n);
  ASSERT_TRUE(cuda->copyToHost(dMaster, ours.data(), n * 4, *stream).ok());
  ASSERT_TRUE(cuda->copyToHost(dCopy, oursCopy.data(), n * 2, *stream).ok());
  EXPECT_EQ(ours, expected) << "the masters (no multiply-adds contracted)";
  EXPECT_EQ(oursCopy, hostCopy) << "the bf16 compute copy";
  absl::StatusOr<double> squares = optimizer->sumOfSquares(dGrad, n, *stream);
  ASSERT_TRUE(squares.ok());
  double host = train::sumOfSquares(
      {reinterpret_cast<const float *>(grad.bytes.data()), n});
  EXPECT_NEAR(*squares, host, 1e-12 * host);
}

TEST_F(CudaBackendTest, CopiesLargerThanTheStagingBuffers) {
  if (!cuda)
    GTEST_SKIP() << "no GPU to test on: " << noGpu;
  std::vector<uint8_t> data((size_t(150) << 20) + 3), back(data.size());
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = uint8_t(i * 2654435761u >> 24);
  auto buffer = cuda->allocate(data.size());
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  std::unique_ptr<Stream> stream = cuda->createStream();
  ASSERT_TRUE(cuda->copyToDevice(data.data(), (*buffer)->data(), data.size(),
                                 *stream)
                  .ok());
  ASSERT_TRUE(
      cuda->copyToHost((*buffer)->data(), back.data(), back.size(), *stream)
          .ok());
  EXPECT_TRUE(data == back);
}

TEST_F(CudaBackendTest, ExpertsSplitOverRanksAreRefusedWhenPrepared) {
  Op split = fusedBlock(5, 8, 2, DType::kF32, 140);
  split.ints = {2, 1, /*expert_parallel=*/2};
  split.operands[2] = randomTensor({4, 40, 48}, 141); // this rank's half
  split.operands[3] = randomTensor({4, 40, 48}, 142);
  split.operands[4] = randomTensor({4, 48, 40}, 143);
  if (!cuda)
    GTEST_SKIP() << "no GPU to test on: " << noGpu;
  expectCudaError(
      split, "the CUDA backend runs MoE blocks on one device only, for now");
}

} // namespace
} // namespace moert
