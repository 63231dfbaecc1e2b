//===- NcclCommunicator.cpp - the collectives over NCCL -------------------===//
//
// All-to-all with per-peer sizes is a group of ncclSend/ncclRecv (NCCL has
// no variable all-to-all call); the rest map onto NCCL's collectives. NCCL's
// errors come back as statuses naming the call.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Nccl.h"

#include "absl/strings/str_cat.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>

namespace moert::comm {
namespace {

absl::Status checkCuda(cudaError_t code, const char *what) {
  if (code == cudaSuccess)
    return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("CUDA ", what, " failed: ", cudaGetErrorString(code)));
}

absl::Status checkNccl(ncclResult_t code, const char *what) {
  if (code == ncclSuccess)
    return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("NCCL ", what, " failed: ", ncclGetErrorString(code)));
}

class StreamPending : public Pending {
public:
  explicit StreamPending(cudaStream_t stream) : stream_(stream) {}
  absl::Status wait() override {
    return checkCuda(cudaStreamSynchronize(stream_), "stream synchronize");
  }

private:
  cudaStream_t stream_;
};

class NcclCommunicator : public Communicator {
public:
  NcclCommunicator(Communicator &bootstrap, ncclComm_t comm,
                   cudaStream_t stream, int rank, int size)
      : bootstrap_(bootstrap), comm_(comm), stream_(stream), rank_(rank),
        size_(size) {}
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  absl::StatusOr<std::unique_ptr<Pending>>
  startAllToAll(const void *send, const std::vector<int64_t> &sendBytes,
                void *recv, const std::vector<int64_t> &recvBytes) override {
    if (int(sendBytes.size()) != size_ || int(recvBytes.size()) != size_)
      return absl::InvalidArgumentError("all-to-all needs a count per rank");
    const auto *from = static_cast<const char *>(send);
    auto *into = static_cast<char *>(recv);
    if (auto s = checkNccl(ncclGroupStart(), "group start"); !s.ok())
      return s;
    int64_t sent = 0, received = 0;
    for (int p = 0; p < size_; ++p) {
      if (sendBytes[p] > 0)
        if (auto s = checkNccl(ncclSend(from + sent, size_t(sendBytes[p]),
                                        ncclInt8, p, comm_, stream_),
                               "send");
            !s.ok())
          return s;
      if (recvBytes[p] > 0)
        if (auto s = checkNccl(ncclRecv(into + received, size_t(recvBytes[p]),
                                        ncclInt8, p, comm_, stream_),
                               "recv");
            !s.ok())
          return s;
      sent += sendBytes[p];
      received += recvBytes[p];
      if (p != rank_)
        traffic_.bytesSent += sendBytes[p];
    }
    ++traffic_.calls;
    if (auto s = checkNccl(ncclGroupEnd(), "group end"); !s.ok())
      return s;
    return std::unique_ptr<Pending>(new StreamPending(stream_));
  }
  absl::Status allToAll(const void *send, const std::vector<int64_t> &sendBytes,
                        void *recv,
                        const std::vector<int64_t> &recvBytes) override {
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<Pending>> pending =
        startAllToAll(send, sendBytes, recv, recvBytes);
    absl::Status status = pending.ok() ? (*pending)->wait() : pending.status();
    traffic_.seconds += std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    return status;
  }
  absl::Status allReduceSum(float *values, int64_t count) override {
    return reduce(values, count, ncclFloat32);
  }
  absl::Status allReduceSum(double *values, int64_t count) override {
    return reduce(values, count, ncclFloat64);
  }
  absl::Status broadcast(void *data, int64_t bytes, int root) override {
    if (auto s = checkNccl(ncclBroadcast(data, data, size_t(bytes), ncclInt8,
                                         root, comm_, stream_),
                           "broadcast");
        !s.ok())
      return s;
    return checkCuda(cudaStreamSynchronize(stream_), "stream synchronize");
  }
  absl::Status barrier() override { return bootstrap_.barrier(); }
  [[noreturn]] void abort(int exitCode) override {
    ncclCommAbort(comm_);
    bootstrap_.abort(exitCode);
    std::_Exit(exitCode); // not reached: the bootstrap's abort ends the run
  }
  absl::StatusOr<std::unique_ptr<Communicator>> split(int color,
                                                      int key) override {
    ncclComm_t part;
    if (auto s = checkNccl(ncclCommSplit(comm_, color, key, &part, nullptr),
                           "split");
        !s.ok())
      return s;
    int rank = 0, size = 1;
    ncclCommUserRank(part, &rank);
    ncclCommCount(part, &size);
    cudaStream_t stream;
    if (auto s = checkCuda(cudaStreamCreate(&stream), "stream create");
        !s.ok())
      return s;
    return std::unique_ptr<Communicator>(
        new NcclCommunicator(bootstrap_, part, stream, rank, size));
  }
  Traffic traffic() const override { return traffic_; }

private:
  absl::Status reduce(void *values, int64_t count, ncclDataType_t type) {
    if (auto s = checkNccl(ncclAllReduce(values, values, size_t(count), type,
                                         ncclSum, comm_, stream_),
                           "all-reduce");
        !s.ok())
      return s;
    return checkCuda(cudaStreamSynchronize(stream_), "stream synchronize");
  }

  Communicator &bootstrap_;
  ncclComm_t comm_;
  cudaStream_t stream_;
  int rank_, size_;
  Traffic traffic_;
};
} // namespace

bool gpuPresent(std::string &why) {
  int count = 0;
  cudaError_t code = cudaGetDeviceCount(&count);
  if (code != cudaSuccess) {
    why = cudaGetErrorString(code);
    return false;
  }
  if (count == 0) {
    why = "no CUDA device";
    return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<Communicator>>
createNcclCommunicator(Communicator &bootstrap, int device) {
  if (auto s = checkCuda(cudaSetDevice(device), "set device"); !s.ok())
    return s;
  ncclUniqueId id;
  if (bootstrap.rank() == 0)
    if (auto s = checkNccl(ncclGetUniqueId(&id), "unique id"); !s.ok())
      return s;
  if (auto s = bootstrap.broadcast(&id, sizeof(id), 0); !s.ok())
    return s;
  ncclComm_t comm;
  if (auto s = checkNccl(ncclCommInitRank(&comm, bootstrap.size(), id,
                                          bootstrap.rank()),
                         "init");
      !s.ok())
    return s;
  cudaStream_t stream;
  if (auto s = checkCuda(cudaStreamCreate(&stream), "stream create");
      !s.ok()) {
    ncclCommDestroy(comm);
    return s;
  }
  return std::unique_ptr<Communicator>(new NcclCommunicator(
      bootstrap, comm, stream, bootstrap.rank(), bootstrap.size()));
}

} // namespace moert::comm
