//===- Parallelism.h - how the ranks of a run share a model -----*- C++ -*-===//
//
// Expert parallelism with data-parallel replicas: `expertParallel`
// consecutive ranks form an expert group that splits each MoE block's
// experts (rank r holds experts [r % EP * L, (r % EP + 1) * L) of E = EP * L);
// the groups replicate one another. Every rank holds the dense parameters.
// The global batch is the ranks' batches in rank order, so an expert group
// sees a contiguous stretch of it.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_COMM_PARALLELISM_H
#define MOERT_COMM_PARALLELISM_H

#include "runtime/comm/Communicator.h"

#include <memory>

namespace moert::comm {

struct Parallelism {
  Communicator *world = nullptr; // every rank: losses, dense gradients
  std::unique_ptr<Communicator> experts;  // this rank's expert group
  std::unique_ptr<Communicator> replicas; // the ranks holding its experts
  int expertParallel = 1;
  /// Pieces each MoE block's exchange is pipelined in (moe-run
  /// --exchange-chunks): the next piece travels while one computes.
  int exchangeChunks = 1;

  int rank() const { return world->rank(); }
  int ranks() const { return world->size(); }
  /// This rank's place in its expert group.
  int expertRank() const { return rank() % expertParallel; }
  bool single() const { return ranks() == 1; }
};

/// Splits `world` into expert groups of `expertParallel` ranks (which must
/// divide the world size) and their replica groups.
absl::StatusOr<std::unique_ptr<Parallelism>>
createParallelism(Communicator &world, int expertParallel);

} // namespace moert::comm

#endif // MOERT_COMM_PARALLELISM_H
