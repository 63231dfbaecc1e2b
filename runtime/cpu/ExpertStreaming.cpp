//===- ExpertStreaming.cpp - experts of a few rows, weights streamed ------===//
//
// Two phases over all streamed experts. The first reads each expert's gate
// and up rows in blocks of kNeuronBlock neurons and makes that block of the
// hidden rows (the SwiGLU applied as the block comes out); the second reads
// its down rows in blocks of kOutputBlock and writes the output rows. Inputs
// and hidden rows are packed by streamed row, so the phases touch nothing
// of the experts that run GEMMs.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/ExpertStreaming.h"

#include "runtime/base/Float16.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Scratch.h"
#include "runtime/cpu/StreamingDot.h"

#include <algorithm>
#include <cstring>

namespace moert::cpu {
namespace {

using namespace streaming;
constexpr int64_t kNeuronBlock = 64;
constexpr int64_t kOutputBlock = 32;

struct StreamingScratch;
template <typename T, int Slot> T *scratch(size_t count) {
  return threadScratch<T, StreamingScratch, Slot>(count);
}

/// An expert whose weights are streamed: its grouped rows in the routing,
/// and where its rows start in the packed inputs and hidden rows.
struct StreamedExpert {
  int64_t expert, firstRow, rows, packedRow;
};

struct Plan {
  const MoeBlockWeights &block;
  const StreamedExpert *experts;
  int64_t gateUpBlocks, downBlocks; // tasks per expert in each phase
  const void *x;                    // [packed rows, d], fp32 or bf16
  void *hidden;                     // [packed rows, f], as x
  float *staging;
};

/// Task t of the first phase: one block of an expert's hidden neurons.
template <bool Dp, typename X, typename W>
MOERT_ISA_INLINE void gateUpTask(const Plan &p, int64_t t) {
  const StreamedExpert &s = p.experts[t / p.gateUpBlocks];
  int64_t d = p.block.d, f = p.block.f;
  int64_t begin = (t % p.gateUpBlocks) * kNeuronBlock;
  int64_t count = std::min(kNeuronBlock, f - begin);
  const X *x = static_cast<const X *>(p.x) + s.packedRow * d;
  size_t firstWeight = size_t((s.expert * f + begin) * d);
  const W *gateRows = static_cast<const W *>(p.block.gate.data) + firstWeight;
  const W *upRows = static_cast<const W *>(p.block.up.data) + firstWeight;
  alignas(64) float gate[kMaxRows][kNeuronBlock], up[kMaxRows][kNeuronBlock];
  for (int64_t j = 0; j < count; ++j)
    dot<Dp>(s.rows, x, d, gateRows + j * d, upRows + j * d, d, &gate[0][j],
            &up[0][j], kNeuronBlock);
  for (int64_t r = 0; r < s.rows; ++r) {
    X *hidden = static_cast<X *>(p.hidden) + (s.packedRow + r) * f + begin;
    if constexpr (sizeof(X) == sizeof(float))
      swigluForward(gate[r], up[r], count, hidden, nullptr);
    else
      swigluForward(gate[r], up[r], count, nullptr, hidden);
  }
}

/// Task t of the second phase: one block of an expert's output columns.
template <bool Dp, typename X, typename W>
MOERT_ISA_INLINE void downTask(const Plan &p, int64_t t) {
  const StreamedExpert &s = p.experts[t / p.downBlocks];
  int64_t d = p.block.d, f = p.block.f;
  int64_t begin = (t % p.downBlocks) * kOutputBlock;
  int64_t end = std::min(d, begin + kOutputBlock);
  const X *hidden = static_cast<const X *>(p.hidden) + s.packedRow * f;
  const W *downRows = static_cast<const W *>(p.block.down.data) +
                      size_t(s.expert * d * f);
  float *out = p.staging + s.firstRow * d;
  int64_t i = begin;
  for (; i + 1 < end; i += 2)
    dot<Dp>(s.rows, hidden, f, downRows + i * f, downRows + (i + 1) * f, f,
            out + i, out + i + 1, d);
  if (i < end) // the last of an odd count, paired with itself
    dot<Dp>(s.rows, hidden, f, downRows + i * f, downRows + i * f, f, out + i,
            out + i, d);
}

template <bool Dp, typename X, typename W>
MOERT_ISA_INLINE void runTask(const Plan &p, bool down, int64_t t) {
  if (down)
    downTask<Dp, X, W>(p, t);
  else
    gateUpTask<Dp, X, W>(p, t);
}

[[MOERT_AVX512_BF16, gnu::flatten]] void runTaskDpBf16(const Plan &p, bool down, int64_t t) {
  runTask<true, uint16_t, uint16_t>(p, down, t);
}

template <typename X, typename W>
[[MOERT_AVX512]] void runTaskAvx512(const Plan &p, bool down, int64_t t) {
  runTask<false, X, W>(p, down, t);
}

template <typename X, typename W>
void runTaskBaseline(const Plan &p, bool down, int64_t t) {
  runTask<false, X, W>(p, down, t);
}

using TaskFn = void (*)(const Plan &, bool, int64_t);

template <typename X, typename W> TaskFn taskFor() {
  if constexpr (sizeof(X) == 2 && sizeof(W) == 2)
    if (cpuHasAvx512Bf16())
      return &runTaskDpBf16;
  return cpuHasAvx512() ? &runTaskAvx512<X, W> : &runTaskBaseline<X, W>;
}
} // namespace

bool streamsExpert(const MoeBlockWeights &block, int64_t rows) {
  bool streamable = block.gate.dtype == DType::kF32 ||
                    block.gate.dtype == DType::kBF16;
  return streamable && rows > 0 && rows <= kMaxRows;
}

void streamExperts(const float *x, const ExpertRouting &routing,
                   const MoeBlockWeights &block, bool bf16, float *staging) {
  int64_t d = block.d, f = block.f, packedRows = 0;
  StreamedExpert *experts = scratch<StreamedExpert, 0>(block.experts);
  int64_t count = 0;
  for (int64_t e = 0; e < block.experts; ++e)
    if (streamsExpert(block, routing.counts[e])) {
      experts[count++] = {e, routing.first[e], routing.counts[e], packedRows};
      packedRows += routing.counts[e];
    }
  if (count == 0)
    return;
  size_t elementBytes = bf16 ? sizeof(uint16_t) : sizeof(float);
  char *packed = scratch<char, 1>(packedRows * (d + f) * elementBytes);
  Plan p{block,   experts,
         (f + kNeuronBlock - 1) / kNeuronBlock,
         (d + kOutputBlock - 1) / kOutputBlock,
         packed,  packed + packedRows * d * elementBytes,
         staging};
  for (int64_t i = 0; i < count; ++i) {
    const StreamedExpert &s = experts[i];
    char *rows = packed + s.packedRow * d * elementBytes;
    gatherRows(x, d, routing.slots.data() + s.firstRow, s.rows, routing.k,
               bf16 ? nullptr : reinterpret_cast<float *>(rows),
               bf16 ? reinterpret_cast<uint16_t *>(rows) : nullptr,
               Threads::kCaller);
  }
  bool bf16Weights = block.gate.dtype == DType::kBF16;
  TaskFn task = bf16 ? taskFor<uint16_t, uint16_t>()
                : bf16Weights ? taskFor<float, uint16_t>()
                              : taskFor<float, float>();
  for (bool down : {false, true}) {
    int64_t tasks = count * (down ? p.downBlocks : p.gateUpBlocks);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t)
      task(p, down, t);
  }
}

} // namespace moert::cpu
