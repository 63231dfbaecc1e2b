//===- MpiCommunicator.cpp - the collectives over MPI ---------------------===//
//
// Open MPI from Debian. Errors are returned (MPI_ERRORS_RETURN) so that the
// tool can name what failed before it aborts every rank; a rank that dies
// ends the job through mpirun, which kills the others.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Communicator.h"

#include "absl/strings/str_cat.h"

#include <mpi.h>

#include <chrono>
#include <climits>

namespace moert::comm {
namespace {

absl::Status check(int code, const char *what) {
  if (code == MPI_SUCCESS)
    return absl::OkStatus();
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return absl::InternalError(
      absl::StrCat("MPI ", what, " failed: ", std::string(text, length)));
}

/// Per-rank byte counts and offsets as MPI's int arrays.
absl::Status toDisplacements(const std::vector<int64_t> &bytes,
                             std::vector<int> &counts,
                             std::vector<int> &offsets) {
  counts.resize(bytes.size());
  offsets.resize(bytes.size());
  int64_t offset = 0;
  for (size_t p = 0; p < bytes.size(); ++p) {
    if (bytes[p] < 0 || bytes[p] > INT_MAX || offset > INT_MAX)
      return absl::InvalidArgumentError(absl::StrCat(
          "an all-to-all block of ", bytes[p], " bytes at offset ", offset,
          " exceeds what one MPI call can address (2 GiB)"));
    counts[p] = int(bytes[p]);
    offsets[p] = int(offset);
    offset += bytes[p];
  }
  return absl::OkStatus();
}

/// An MPI_Ialltoallv in flight, with the count arrays it reads.
class MpiPending : public Pending {
public:
  std::vector<int> sendCounts, sendOffsets, recvCounts, recvOffsets;
  MPI_Request request = MPI_REQUEST_NULL;
  Traffic *traffic = nullptr;

  ~MpiPending() override {
    if (request != MPI_REQUEST_NULL) // abandoned after an error elsewhere
      (void)wait();
  }
  absl::Status wait() override {
    auto start = std::chrono::steady_clock::now();
    absl::Status status =
        check(MPI_Wait(&request, MPI_STATUS_IGNORE), "all-to-all (wait)");
    traffic->seconds += std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    return status;
  }
};

class MpiCommunicator : public Communicator {
public:
  MpiCommunicator(MPI_Comm comm, bool ownsMpi) : comm_(comm), ownsMpi_(ownsMpi) {
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    if (comm_ != MPI_COMM_WORLD)
      MPI_Comm_free(&comm_);
    if (ownsMpi_)
      MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  absl::Status allToAll(const void *send, const std::vector<int64_t> &sendBytes,
                        void *recv,
                        const std::vector<int64_t> &recvBytes) override {
    absl::StatusOr<std::unique_ptr<Pending>> pending =
        startAllToAll(send, sendBytes, recv, recvBytes);
    if (!pending.ok())
      return pending.status();
    return (*pending)->wait();
  }
  Traffic traffic() const override { return traffic_; }

  absl::StatusOr<std::unique_ptr<Pending>>
  startAllToAll(const void *send, const std::vector<int64_t> &sendBytes,
                void *recv, const std::vector<int64_t> &recvBytes) override {
    if (int(sendBytes.size()) != size_ || int(recvBytes.size()) != size_)
      return absl::InvalidArgumentError("all-to-all needs a count per rank");
    auto pending = std::make_unique<MpiPending>();
    if (auto s = toDisplacements(sendBytes, pending->sendCounts,
                                 pending->sendOffsets);
        !s.ok())
      return s;
    if (auto s = toDisplacements(recvBytes, pending->recvCounts,
                                 pending->recvOffsets);
        !s.ok())
      return s;
    pending->traffic = &traffic_;
    auto start = std::chrono::steady_clock::now();
    if (auto s = check(
            MPI_Ialltoallv(send, pending->sendCounts.data(),
                           pending->sendOffsets.data(), MPI_BYTE, recv,
                           pending->recvCounts.data(),
                           pending->recvOffsets.data(), MPI_BYTE, comm_,
                           &pending->request),
            "all-to-all (start)");
        !s.ok())
      return s;
    traffic_.seconds += std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    for (int p = 0; p < size_; ++p)
      if (p != rank_)
        traffic_.bytesSent += sendBytes[p];
    ++traffic_.calls;
    return std::unique_ptr<Pending>(std::move(pending));
  }
  absl::Status allReduceSum(float *values, int64_t count) override {
    return reduce(values, count, MPI_FLOAT);
  }
  absl::Status allReduceSum(double *values, int64_t count) override {
    return reduce(values, count, MPI_DOUBLE);
  }
  absl::Status broadcast(void *data, int64_t bytes, int root) override {
    auto *at = static_cast<char *>(data);
    for (int64_t done = 0; done < bytes; done += INT_MAX) {
      int chunk = int(std::min<int64_t>(bytes - done, INT_MAX));
      if (auto s = check(MPI_Bcast(at + done, chunk, MPI_BYTE, root, comm_),
                         "broadcast");
          !s.ok())
        return s;
    }
    return absl::OkStatus();
  }
  absl::Status barrier() override {
    return check(MPI_Barrier(comm_), "barrier");
  }
  [[noreturn]] void abort(int exitCode) override {
    MPI_Abort(MPI_COMM_WORLD, exitCode);
    std::_Exit(exitCode); // MPI_Abort does not return; this keeps the contract
  }
  absl::StatusOr<std::unique_ptr<Communicator>> split(int color,
                                                      int key) override {
    MPI_Comm part;
    if (auto s = check(MPI_Comm_split(comm_, color, key, &part), "split");
        !s.ok())
      return s;
    return std::unique_ptr<Communicator>(new MpiCommunicator(part, false));
  }

private:
  absl::Status reduce(void *values, int64_t count, MPI_Datatype type) {
    auto *at = static_cast<char *>(values);
    int size = 0;
    MPI_Type_size(type, &size);
    for (int64_t done = 0; done < count; done += INT_MAX) {
      int chunk = int(std::min<int64_t>(count - done, INT_MAX));
      if (auto s = check(MPI_Allreduce(MPI_IN_PLACE, at + done * size, chunk,
                                       type, MPI_SUM, comm_),
                         "all-reduce");
          !s.ok())
        return s;
    }
    return absl::OkStatus();
  }

  MPI_Comm comm_;
  bool ownsMpi_;
  int rank_ = 0, size_ = 1;
  Traffic traffic_;
};
} // namespace

absl::StatusOr<std::unique_ptr<Communicator>> createMpiCommunicator() {
  int provided = 0;
  // Only the main thread calls MPI; OpenMP threads never do.
  if (auto s = check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED,
                                     &provided),
                     "initialisation");
      !s.ok())
    return s;
  return std::unique_ptr<Communicator>(
      new MpiCommunicator(MPI_COMM_WORLD, /*ownsMpi=*/true));
}

} // namespace moert::comm
