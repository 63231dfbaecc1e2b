//===- Ranks.h - the processes of a moe-run -----------------------*- C++ -*-===//
//
// moe-run is one process, or one of the N that `mpirun -np N` starts. It
// joins the run before anything else, checks that the artifact was planned
// for this many ranks, and leaves it at the end. A command that fails on
// one rank ends them all: the rank prints its error once (naming itself)
// and aborts the job, so no other rank waits for it in a collective.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TOOLS_RANKS_H
#define MOERT_TOOLS_RANKS_H

#include "runtime/artifact/Artifact.h"
#include "runtime/comm/Parallelism.h"

#include "absl/status/statusor.h"

#include <ostream>
#include <string>

namespace moert::tools {

/// Joins the run: MPI when an MPI launcher started this process.
absl::Status joinRun();
/// Leaves it (MPI_Finalize) after a command succeeded.
void leaveRun();

comm::Communicator &world();
bool isRankZero();

/// The expert groups of `artifact`'s plan; an error when the run's size is
/// not the ranks it was compiled for. Null for a plain one-process run.
absl::StatusOr<comm::Parallelism *> planRanks(const Artifact &artifact);

/// With --profile on several ranks: `expert_exchange_bytes_per_step` (the
/// bytes all ranks sent one another through the experts' all-to-alls, per
/// step or forward pass) and `expert_exchange_ms_per_step` (rank 0's time
/// in them, waiting included), printed by rank 0. Every rank must call it.
absl::Status reportExchange(int64_t steps, std::ostream &out);

/// Ends a failed command: prints `tool: error: message` (with the rank
/// when there are several) and returns 1, or in a run of several ranks
/// ends every rank. With `everyRank` (an error every rank meets alike,
/// such as a bad flag), only rank 0 prints it.
int failRun(const std::string &tool, const absl::Status &status,
            bool everyRank = false);

} // namespace moert::tools

#endif // MOERT_TOOLS_RANKS_H
