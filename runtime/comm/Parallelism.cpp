//===- Parallelism.cpp - expert groups and their replicas -----------------===//

#include "runtime/comm/Parallelism.h"

#include "absl/strings/str_cat.h"

namespace moert::comm {

absl::StatusOr<std::unique_ptr<Parallelism>>
createParallelism(Communicator &world, int expertParallel) {
  if (expertParallel < 1 || world.size() % expertParallel != 0)
    return absl::InvalidArgumentError(
        absl::StrCat("expert-parallel degree ", expertParallel,
                     " does not divide the ", world.size(), " ranks"));
  auto parallelism = std::make_unique<Parallelism>();
  parallelism->world = &world;
  parallelism->expertParallel = expertParallel;
  int rank = world.rank();
  absl::StatusOr<std::unique_ptr<Communicator>> experts =
      world.split(rank / expertParallel, rank);
  if (!experts.ok())
    return experts.status();
  absl::StatusOr<std::unique_ptr<Communicator>> replicas =
      world.split(rank % expertParallel, rank);
  if (!replicas.ok())
    return replicas.status();
  parallelism->experts = std::move(*experts);
  parallelism->replicas = std::move(*replicas);
  return parallelism;
}

} // namespace moert::comm
