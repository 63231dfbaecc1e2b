//===- ExpertSteps.h - the steps MoE blocks are made of, on the device -*- C++ -*-===//
//
// Internal to Experts.cpp and ExpertsGrad.cpp: routing and grouping, the
// experts' row counts on the host, and the experts' GEMMs forward and
// backward over grouped rows.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_EXPERTSTEPS_H
#define MOERT_CUDA_EXPERTSTEPS_H

#include "runtime/cuda/CudaContext.h"
#include "runtime/cuda/Enqueue.h"
#include "runtime/cuda/StreamScratch.h"

#include <vector>

namespace moert::cuda {

/// An MoE block's experts: gate, up and down [E, F, D], [E, F, D], [E, D, F].
struct ExpertWeights {
  const TensorRef &gate, &up, &down;
  int64_t experts() const { return gate.shape[0]; }
  int64_t f() const { return gate.shape[1]; }
  int64_t d() const { return gate.shape[2]; }
  /// bf16 GEMMs when all three are bf16 (else fp32, widening as needed).
  bool bf16() const {
    return gate.dtype == DType::kBF16 && up.dtype == DType::kBF16 &&
           down.dtype == DType::kBF16;
  }
};

/// A block's routing: top-k weights and experts by slot, and the slots
/// grouped by expert (ExpertRows.cu), with the counts on the host unless
/// the experts' GEMMs read them on the device.
struct Routing {
  float *weights = nullptr;
  int32_t *indices = nullptr, *slotOfRow = nullptr;
  int64_t *counts = nullptr, *rowOfSlot = nullptr;
  std::vector<int64_t> hostCounts; // empty when the counts stay
  int64_t total = 0; // grouped rows; when the counts stay, the slots (a
                     // bound), slotOfRow -1 past the grouped rows
};

/// Top-k of `logits` [tokens, experts] into r.weights and r.indices, then
/// the grouping (skipping `skip`'s tokens) and, with `countsOnHost`, the
/// counts on the host.
absl::Status route(const float *logits, int64_t tokens, int64_t experts,
                   int64_t k, bool normalize, const SkippedTokens &skip,
                   Routing &r, CudaContext &context, int32_t site,
                   DeviceFault *fault, StreamScratch &scratch,
                   cudaStream_t stream, bool countsOnHost = true);
/// The grouping of given slot experts (`indices` [slots]) into r.
absl::Status group(const int32_t *indices, int64_t slots, int64_t experts,
                   const SkippedTokens &skip, Routing &r, CudaContext &context,
                   int32_t site, DeviceFault *fault, StreamScratch &scratch,
                   cudaStream_t stream, bool countsOnHost = true);
/// Device counts [experts] on the host; an error unless they are
/// non-negative and (rows >= 0) sum to rows, as the CPU checks counts it
/// did not compute.
absl::StatusOr<std::vector<int64_t>> hostCounts(const int64_t *counts,
                                                int64_t experts, int64_t rows,
                                                cudaStream_t stream);
/// The labels' skipped tokens of a fused block (labels operand index, -1:
/// none), lastLabelled in `scratch`.
absl::StatusOr<SkippedTokens> skippedTokens(const KernelLaunch &launch,
                                            int labels, int64_t k,
                                            CudaContext &context,
                                            StreamScratch &scratch,
                                            cudaStream_t stream);

/// An expert_mlp launch's grouped rows (operand 0) in the GEMMs' input
/// type, and its counts (operand 1), checked, on the host.
struct GroupedInput {
  std::vector<int64_t> counts;
  const uint8_t *rows;
};
absl::StatusOr<GroupedInput> groupedInput(const KernelLaunch &launch,
                                          const ExpertWeights &w,
                                          CudaContext &context,
                                          StreamScratch &scratch,
                                          cudaStream_t stream);

/// `x` [n] fp32 rounded to bf16 in scratch (or x itself when !bf16).
absl::StatusOr<const uint8_t *> asInputs(const float *x, int64_t n, bool bf16,
                                         CudaContext &context,
                                         StreamScratch &scratch,
                                         cudaStream_t stream);

/// Where the experts' gate and up GEMM outputs go: kept buffers [rows, F]
/// (a FusedExpertsTrain's results), or null for scratch.
struct KeptRows {
  float *gate = nullptr, *up = nullptr;
};

/// rows [total, d] = each expert's SwiGLU MLP over its rows of `grouped`
/// (in the GEMMs' input type), expert e taking counts[e] rows.
absl::Status expertsForward(const uint8_t *grouped,
                            const std::vector<int64_t> &counts,
                            const ExpertWeights &w, float *rows,
                            CudaContext &context, StreamScratch &scratch,
                            cudaStream_t stream, KeptRows kept = {});

/// Rows per expert on average up to which ExpertGemms::kAuto takes the
/// tiled GEMMs: there the experts' weights, which both read once, cost more
/// than the products, and the tiled path saves the host round trip.
constexpr int64_t kTiledRowsPerExpert = 64;

/// Whether a fused forward of `slots` token copies runs `w` as the tiled
/// GEMMs: bf16 experts, d and f multiples of 8, 16-byte aligned weights,
/// and the context's choice.
bool tiledExperts(const ExpertWeights &w, int64_t slots,
                  const CudaContext &context);

/// expertsForward's rows by the tiled GEMMs of ExpertGemm.cu, the counts
/// [experts] read on the device: `grouped` bf16 [rowsBound, d], `rows`
/// [rowsBound, d], of which only the grouped rows are written.
absl::Status tiledExpertsForward(const uint8_t *grouped, const int64_t *counts,
                                 int64_t rowsBound, const ExpertWeights &w,
                                 float *rows, CudaContext &context,
                                 StreamScratch &scratch, cudaStream_t stream,
                                 KeptRows kept = {});

/// The experts' backward over grouped rows, as the CPU's expertsBackward:
/// from `grouped` (GEMM input type), `dRows` [total, d] (each row's output
/// gradient, fp32) and the rows' routing weights (`weights` by slot with
/// `slotOfRow`; null: 1): dGrouped [total, d], the weights' gradients (zero
/// for experts without rows) and, with weights, dweights by slot. `saved`
/// holds the forward's gate and up outputs, else they are recomputed.
struct ExpertGrads {
  float *dGrouped, *dGate, *dUp, *dDown;
  float *dweights = nullptr;
};
absl::Status expertsBackward(const uint8_t *grouped, const float *dRows,
                             const std::vector<int64_t> &counts,
                             const ExpertWeights &w, const float *weights,
                             const int32_t *slotOfRow, KeptRows saved,
                             const ExpertGrads &grads, CudaContext &context,
                             StreamScratch &scratch, cudaStream_t stream);

} // namespace moert::cuda

#endif // MOERT_CUDA_EXPERTSTEPS_H
