//===- Ranks.cpp - the processes of a moe-run -----------------------------===//

#include "runtime/tools/Ranks.h"

#include "runtime/base/Printable.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

#include <iostream>
#include <memory>

ABSL_FLAG(int, exchange_chunks, 1,
          "several ranks: pipeline each MoE block's exchange in this many "
          "pieces of the batch, the next travelling while one computes "
          "(1: one blocking exchange, the one-process GEMMs exactly)");

namespace moert::tools {
namespace {
std::unique_ptr<comm::Communicator> theWorld;
std::unique_ptr<comm::Parallelism> theParallelism;
} // namespace

absl::Status joinRun() {
  if (!comm::launchedByMpi()) {
    theWorld = comm::createSingleCommunicator();
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<comm::Communicator>> mpi =
      comm::createMpiCommunicator();
  if (!mpi.ok()) {
    theWorld = comm::createSingleCommunicator();
    return mpi.status();
  }
  theWorld = std::move(*mpi);
  return absl::OkStatus();
}

void leaveRun() {
  theParallelism.reset();
  theWorld.reset();
}

comm::Communicator &world() { return *theWorld; }
bool isRankZero() { return theWorld->rank() == 0; }

absl::StatusOr<comm::Parallelism *> planRanks(const Artifact &artifact) {
  const fb::Model &model = artifact.model();
  if (model.ranks() != theWorld->size())
    return absl::InvalidArgumentError(absl::StrCat(
        artifact.path(), ": compiled for ", model.ranks(), " rank",
        model.ranks() == 1 ? "" : "s", " (moec compile --ranks ",
        model.ranks(), ") but this run has ", theWorld->size(),
        model.ranks() == 1 ? "; run it without mpirun or recompile with "
                             "--ranks "
                           : "; start it with mpirun -np ",
        model.ranks() == 1 ? theWorld->size() : model.ranks()));
  int chunks = absl::GetFlag(FLAGS_exchange_chunks);
  if (chunks < 1 || chunks > 4096)
    return absl::InvalidArgumentError(absl::StrCat(
        "--exchange-chunks must be in [1, 4096], got ", chunks));
  if (theWorld->size() == 1)
    return nullptr;
  absl::StatusOr<std::unique_ptr<comm::Parallelism>> parallelism =
      comm::createParallelism(*theWorld, model.expert_parallel());
  if (!parallelism.ok())
    return parallelism.status();
  theParallelism = std::move(*parallelism);
  theParallelism->exchangeChunks = chunks;
  return theParallelism.get();
}

absl::Status reportExchange(int64_t steps, std::ostream &out) {
  if (!theParallelism || steps < 1)
    return absl::OkStatus();
  comm::Traffic traffic = theParallelism->experts->traffic();
  double bytes = double(traffic.bytesSent);
  if (auto status = theWorld->allReduceSum(&bytes, 1); !status.ok())
    return status;
  if (isRankZero())
    out << "expert_exchange_bytes_per_step: " << int64_t(bytes / steps) << "\n"
        << "expert_exchange_ms_per_step: "
        << traffic.seconds * 1e3 / double(steps) << "\n";
  return absl::OkStatus();
}

int failRun(const std::string &tool, const absl::Status &status,
            bool everyRank) {
  comm::Communicator &ranks = world();
  if (ranks.size() == 1) {
    std::cerr << tool << ": error: " << printable(status.message()) << "\n";
    return 1;
  }
  if (everyRank && ranks.rank() != 0) {
    // Rank 0 reports it and ends the job; this rank waits to be ended.
    (void)ranks.barrier();
    ranks.abort(1);
  }
  std::cerr << tool << ": error: "
            << (everyRank ? "" : absl::StrCat("rank ", ranks.rank(), " of ",
                                              ranks.size(), ": "))
            << printable(status.message()) << std::endl;
  ranks.abort(1);
  return 1; // not reached
}

} // namespace moert::tools
