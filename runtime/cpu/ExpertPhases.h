//===- ExpertPhases.h - the fused MoE block's phases ------------*- C++ -*-===//
//
// Internal to the fused MoE kernels. A fused block is route, experts,
// combine (ExpertRouting.h). One process runs the three in a row; an
// expert-parallel run cuts the block at its two exchange points
// (FusedExpertsExchange.cpp): the routed rows travel to the ranks that own
// their experts, the experts phase runs there over the rows received (a
// routing of its own, one slot per row), and the rows travel back to be
// combined. The experts phase is the same function either way.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_EXPERTPHASES_H
#define MOERT_CPU_EXPERTPHASES_H

#include "runtime/comm/Communicator.h"
#include "runtime/cpu/ExpertRouting.h"
#include "runtime/cpu/Kernels.h"

namespace moert::cpu {

/// The experts phase of the forward pass: every expert of `block` (routing
/// .experts of them) over the rows `routing` groups, the rows of x read at
/// slot / k. With `staging`, each grouped row's output lands there,
/// unweighted; without, the rows go, weighted, into `out`. With `kept`,
/// the hidden states go there by grouped row and no expert is streamed.
absl::Status expertsForward(const float *x, const ExpertRouting &routing,
                            const MoeBlockWeights &block, float *out,
                            float *staging, KeptHidden kept = {});

/// Where the packed experts phase puts its rows: with `out`, weighted into
/// the tokens' outputs (zeroed first), the streamed experts' rows read from
/// `staging` by grouped row; without, unweighted into `staging` by grouped
/// row, the streamed experts' rows left as they are.
struct ExpertOutputs {
  float *out = nullptr;
  float *staging = nullptr;
};

/// The experts phase of the forward pass over block.packed for every expert
/// that is not streamed (PackedExpertsForward.cpp).
absl::Status packedExpertsForward(const float *x, const ExpertRouting &routing,
                                  const MoeBlockWeights &block,
                                  ExpertOutputs outputs);

/// The experts phase of the backward pass: the experts' weight gradients
/// (dgate, dup, ddown, [routing.experts, ...]), the routing weights'
/// gradients (dweights, by slot) and the rows' input gradients: unweighted
/// into `staging` by grouped row, or summed per token into `dx`. With
/// `saved`, the hidden states are read from there, by grouped row.
absl::Status expertsBackward(const float *x, const float *dout,
                             const ExpertRouting &routing,
                             const MoeBlockWeights &block, float *dx,
                             float *staging, float *dweights, float *dgate,
                             float *dup, float *ddown, KeptHidden saved = {});

/// The forward pass past routing, with the experts split over `group`
/// (block.experts / group.size() consecutive experts per rank, the weights
/// in `block` being this rank's): exchange, experts, exchange, combine, in
/// `chunks` pipelined pieces of the batch.
absl::Status exchangeExpertsForward(const float *x,
                                    const ExpertRouting &routing,
                                    const MoeBlockWeights &block,
                                    comm::Communicator &group, int64_t chunks,
                                    float *out);

/// The backward pass past routing over `group`: the rows of x and of the
/// output gradient go out with their routing weights; the rows' input
/// gradients and the weights' gradients come back.
absl::Status exchangeExpertsBackward(const float *x, const float *dout,
                                     const ExpertRouting &routing,
                                     const MoeBlockWeights &block,
                                     comm::Communicator &group,
                                     int64_t chunks, float *dx,
                                     float *dweights, float *dgate, float *dup,
                                     float *ddown);

} // namespace moert::cpu

#endif // MOERT_CPU_EXPERTPHASES_H
