//===- Nccl.h - the collectives over NCCL, for GPU ranks --------*- C++ -*-===//
//
// Built where the CUDA toolkit and NCCL are (/usr/local/cuda), used where a
// GPU is. Buffers are device memory of the rank's GPU; every collective runs
// on the communicator's own stream and, as the Communicator contract says,
// has completed when the call returns (startAllToAll: when wait() does).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_COMM_NCCL_H
#define MOERT_COMM_NCCL_H

#include "runtime/comm/Communicator.h"

namespace moert::comm {

/// Whether this process sees a CUDA device; `why` says why not.
bool gpuPresent(std::string &why);

/// An NCCL communicator over the ranks of `bootstrap` (MPI, or the single
/// process), on CUDA device `device`: rank 0's ncclUniqueId is broadcast
/// over `bootstrap`, which must outlive it (abort() ends the run through it).
absl::StatusOr<std::unique_ptr<Communicator>>
createNcclCommunicator(Communicator &bootstrap, int device);

} // namespace moert::comm

#endif // MOERT_COMM_NCCL_H
