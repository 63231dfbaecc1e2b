//===- Fp32ViewTest.cpp - kernels on fp32 views of bf16 activations -------===//
//
// A kernel without a bf16 path for an activation stored as bf16 runs on an
// fp32 view of its launch (runtime/exec/Fp32View.h). On the CPU backend:
// attention with fp32 products (its bf16 attribute off) given bf16 q, k, v
// and a bf16 output computes the fp32 kernel over the widened inputs, its
// output rounded; a linear layer over fp32 weights reads a bf16 input widened.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/cpu/Kernels.h"
#include "tests/runtime/OneKernel.h"

#include <gtest/gtest.h>

#include <random>

namespace moert {
namespace {

std::vector<uint16_t> randomBf16(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<uint16_t> bits(n);
  for (uint16_t &b : bits)
    b = floatToBf16(normal(gen));
  return bits;
}

std::vector<float> widened(const std::vector<uint16_t> &bits) {
  std::vector<float> values(bits.size());
  for (size_t i = 0; i < bits.size(); ++i)
    values[i] = bf16ToFloat(bits[i]);
  return values;
}

std::vector<uint16_t> rounded(const std::vector<float> &values) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    bits[i] = floatToBf16(values[i]);
  return bits;
}

absl::Status launch(fb::OpKind op, std::vector<int64_t> ints,
                    std::vector<double> floats, std::vector<TensorRef> operands,
                    std::vector<TensorRef> results) {
  std::unique_ptr<Backend> cpu = createCpuBackend();
  testing::OneKernel kernel(op, ints, floats, operands.size(), results.size());
  KernelLaunch l;
  l.kernel = kernel.kernel();
  l.operands = std::move(operands);
  l.results = std::move(results);
  if (auto s = cpu->prepare(l); !s.ok())
    return s;
  std::unique_ptr<Stream> stream = cpu->createStream();
  return cpu->launch(l, *stream);
}

TEST(Fp32ViewTest, AttentionWithFp32ProductsOverBf16Activations) {
  int64_t batch = 2, seq = 19, heads = 4, kvHeads = 2, headDim = 12;
  std::vector<int64_t> qShape = {batch, seq, heads * headDim},
                       kvShape = {batch, seq, kvHeads * headDim};
  auto q = randomBf16(batch * seq * heads * headDim, 1);
  auto k = randomBf16(batch * seq * kvHeads * headDim, 2);
  auto v = randomBf16(k.size(), 3);
  std::vector<uint16_t> out(q.size());
  double scale = 0.3;
  ASSERT_TRUE(launch(fb::OpKind::Attention, {heads, kvHeads, 1, 0}, {scale},
                     {{q.data(), DType::kBF16, qShape},
                      {k.data(), DType::kBF16, kvShape},
                      {v.data(), DType::kBF16, kvShape}},
                     {{out.data(), DType::kBF16, qShape}})
                  .ok());
  std::vector<float> expected(q.size());
  auto wq = widened(q), wk = widened(k), wv = widened(v);
  cpu::attention(wq.data(), wk.data(), wv.data(), batch, seq, heads, kvHeads,
                 headDim, true, scale, expected.data(), /*bf16=*/false);
  EXPECT_EQ(out, rounded(expected));
}

TEST(Fp32ViewTest, LinearOverFp32WeightsReadsABf16InputWidened) {
  int64_t m = 13, k = 40, n = 9;
  auto x = randomBf16(m * k, 4);
  std::mt19937 gen(5);
  std::normal_distribution<float> normal;
  std::vector<float> w(n * k), y(m * n), expected(m * n);
  for (float &value : w)
    value = normal(gen);
  ASSERT_TRUE(launch(fb::OpKind::Linear, {}, {},
                     {{x.data(), DType::kBF16, {m, k}},
                      {w.data(), DType::kF32, {n, k}}},
                     {{y.data(), DType::kF32, {m, n}}})
                  .ok());
  auto wx = widened(x);
  ASSERT_TRUE(cpu::linear(wx.data(), m, k, {w.data(), DType::kF32}, n,
                          expected.data())
                  .ok());
  EXPECT_EQ(y, expected);
}

} // namespace
} // namespace moert
