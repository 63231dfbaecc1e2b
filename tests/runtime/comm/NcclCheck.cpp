//===- NcclCheck.cpp - the NCCL communicator on this machine's GPUs ------===//
//
// One process, or the ranks `mpirun` starts (one GPU each): an all-to-all
// with a different size for every pair of ranks, a sum, a broadcast and a
// split, each checked against the values every rank can work out itself.
// Where no GPU is, it says so and succeeds (skipped).
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Nccl.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace moert::comm;

namespace {
int failed(const std::string &what) {
  std::fprintf(stderr, "nccl-check: FAILED: %s\n", what.c_str());
  return 1;
}

/// Device memory holding `host`; copied back by read().
struct DeviceFloats {
  float *data = nullptr;
  size_t count;
  explicit DeviceFloats(const std::vector<float> &host) : count(host.size()) {
    cudaMalloc(&data, std::max<size_t>(count, 1) * sizeof(float));
    cudaMemcpy(data, host.data(), count * sizeof(float), cudaMemcpyHostToDevice);
  }
  ~DeviceFloats() { cudaFree(data); }
  std::vector<float> read() const {
    std::vector<float> host(count);
    cudaMemcpy(host.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost);
    return host;
  }
};
} // namespace

int main() {
  std::string why;
  if (!gpuPresent(why)) {
    std::printf("SKIP: nccl-check needs a CUDA GPU (%s)\n", why.c_str());
    return 0;
  }
  absl::StatusOr<std::unique_ptr<Communicator>> bootstrap =
      launchedByMpi() ? createMpiCommunicator() : createSingleCommunicator();
  if (!bootstrap.ok())
    return failed(std::string(bootstrap.status().message()));
  int rank = (*bootstrap)->rank(), ranks = (*bootstrap)->size(), devices = 0;
  cudaGetDeviceCount(&devices);
  absl::StatusOr<std::unique_ptr<Communicator>> nccl =
      createNcclCommunicator(**bootstrap, rank % devices);
  if (!nccl.ok())
    return failed(std::string(nccl.status().message()));
  Communicator &comm = **nccl;

  // Rank r sends r + p + 1 floats of value 100 r + p to rank p.
  std::vector<float> send;
  std::vector<int64_t> sendBytes(ranks), recvBytes(ranks);
  int64_t received = 0;
  for (int p = 0; p < ranks; ++p) {
    send.insert(send.end(), rank + p + 1, float(100 * rank + p));
    sendBytes[p] = (rank + p + 1) * int64_t(sizeof(float));
    recvBytes[p] = (p + rank + 1) * int64_t(sizeof(float));
    received += p + rank + 1;
  }
  DeviceFloats out(send), in(std::vector<float>(received, -1.0f));
  if (auto s = comm.allToAll(out.data, sendBytes, in.data, recvBytes); !s.ok())
    return failed(std::string(s.message()));
  std::vector<float> got = in.read();
  size_t at = 0;
  for (int p = 0; p < ranks; ++p)
    for (int i = 0; i < p + rank + 1; ++i, ++at)
      if (got[at] != float(100 * p + rank))
        return failed("all-to-all: wrong value from rank " + std::to_string(p));

  DeviceFloats sum(std::vector<float>(3, float(rank + 1)));
  if (auto s = comm.allReduceSum(sum.data, 3); !s.ok())
    return failed(std::string(s.message()));
  for (float v : sum.read())
    if (v != float(ranks * (ranks + 1) / 2))
      return failed("all-reduce: wrong sum");

  DeviceFloats root(std::vector<float>(5, float(rank == 0 ? 7 : rank)));
  if (auto s = comm.broadcast(root.data, 5 * sizeof(float), 0); !s.ok())
    return failed(std::string(s.message()));
  for (float v : root.read())
    if (v != 7.0f)
      return failed("broadcast: wrong value");

  absl::StatusOr<std::unique_ptr<Communicator>> half = comm.split(rank % 2, rank);
  if (!half.ok())
    return failed(std::string(half.status().message()));
  if ((*half)->size() != (ranks + 1 - rank % 2) / 2)
    return failed("split: wrong size");
  std::printf("nccl-check: ok (%d rank%s)\n", ranks, ranks == 1 ? "" : "s");
  return 0;
}
