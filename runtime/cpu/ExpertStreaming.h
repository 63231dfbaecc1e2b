//===- ExpertStreaming.h - experts of a few rows, weights streamed -*- C++ -*-===//
//
// Internal to the fused forward. An expert that got a few rows (decode,
// short prompts, the tail of uneven routing) gains nothing from a GEMM: the
// time goes into reading its weights, which a GEMM call would also repack.
// Such an expert's weights are instead read once, row after row, each row
// dotted with all of the expert's input rows at once, so its time is its
// weight bytes over the memory bandwidth (the "weight-streaming bound").
//
// The work is shared out as (expert, block of weight rows) tasks over all
// streamed experts together, so threads stay busy however uneven the
// experts are. Every output element is one dot product summed in a fixed
// order by one thread, so results are the same for any thread count.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_EXPERTSTREAMING_H
#define MOERT_CPU_EXPERTSTREAMING_H

#include "runtime/cpu/ExpertRouting.h"
#include "runtime/cpu/Kernels.h"

#include "absl/status/status.h"

namespace moert::cpu {

/// Whether the fused forward streams the weights of an expert with `rows`
/// rows rather than running GEMMs: 1 to 4 rows (SGLang's and ktransformers'
/// CPU MoE kernels switch at about the same point; on 2 cores the two paths
/// measured alike between 4 and 8 rows). Only fp32 and bf16 weights.
bool streamsExpert(const MoeBlockWeights &block, int64_t rows);

/// For every expert e that streamsExpert: staging's grouped rows of e get
/// the expert's SwiGLU MLP of their tokens' rows of x, unweighted. With
/// `bf16`, the inputs of both products are rounded to bf16 first, as the
/// bf16 GEMMs do.
void streamExperts(const float *x, const ExpertRouting &routing,
                   const MoeBlockWeights &block, bool bf16, float *staging);

} // namespace moert::cpu

#endif // MOERT_CPU_EXPERTSTREAMING_H
