//===- Communicator.h - the collectives a multi-process run needs -*- C++ -*-===//
//
// One interface over the processes of a run: the single process (the
// default), MPI on CPUs, and later NCCL on GPUs. Kernels and the trainer
// speak only to this interface, so the same code runs on one rank or many.
// Every collective is blocking and must be called by every rank of the
// communicator in the same order; a failure comes back as a status, and the
// tool then calls abort() so that no other rank waits for this one.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_COMM_COMMUNICATOR_H
#define MOERT_COMM_COMMUNICATOR_H

#include "absl/status/statusor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moert::comm {

/// What this rank's all-to-alls moved to other ranks, and the time spent in
/// them (waiting for the slowest rank included).
struct Traffic {
  int64_t bytesSent = 0;
  double seconds = 0;
  int64_t calls = 0;
};

/// A non-blocking collective in flight: its buffers must stay untouched
/// until wait() returns.
class Pending {
public:
  virtual ~Pending() = default;
  virtual absl::Status wait() = 0;
};

class Communicator {
public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  /// Sends sendBytes[p] bytes to each rank p and receives recvBytes[p] from
  /// it. Both buffers hold one block per rank, in rank order, back to back.
  virtual absl::Status allToAll(const void *send,
                                const std::vector<int64_t> &sendBytes,
                                void *recv,
                                const std::vector<int64_t> &recvBytes) = 0;
  /// allToAll, started: it proceeds while the caller computes (as far as
  /// the library progresses it on its own) and completes in wait().
  virtual absl::StatusOr<std::unique_ptr<Pending>>
  startAllToAll(const void *send, const std::vector<int64_t> &sendBytes,
                void *recv, const std::vector<int64_t> &recvBytes) = 0;
  /// Replaces `values` on every rank by their sum over the ranks.
  virtual absl::Status allReduceSum(float *values, int64_t count) = 0;
  virtual absl::Status allReduceSum(double *values, int64_t count) = 0;
  /// Copies `bytes` at `data` on rank `root` to every rank.
  virtual absl::Status broadcast(void *data, int64_t bytes, int root) = 0;
  virtual absl::Status barrier() = 0;
  /// Ends every process of the run with a non-zero status; `reason` is
  /// printed once, by the caller, before this is called.
  [[noreturn]] virtual void abort(int exitCode) = 0;
  /// The ranks that pass the same `color`, ordered by `key`: a communicator
  /// of its own (MPI_Comm_split's contract).
  virtual absl::StatusOr<std::unique_ptr<Communicator>> split(int color,
                                                              int key) = 0;
  /// The all-to-all traffic since this communicator was made.
  virtual Traffic traffic() const { return {}; }
};

/// The run of one process: collectives are copies or nothing.
std::unique_ptr<Communicator> createSingleCommunicator();

/// The processes `mpirun` started (MPI_COMM_WORLD), initialising MPI; MPI
/// is finalised when the returned communicator is destroyed.
absl::StatusOr<std::unique_ptr<Communicator>> createMpiCommunicator();

/// True when this process was started by an MPI launcher (its environment
/// says so), so that a tool uses MPI exactly when it runs under mpirun.
bool launchedByMpi();

} // namespace moert::comm

#endif // MOERT_COMM_COMMUNICATOR_H
