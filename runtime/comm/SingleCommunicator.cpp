//===- SingleCommunicator.cpp - the collectives of one process ------------===//

#include "runtime/comm/Communicator.h"

#include <cstdlib>
#include <cstring>

namespace moert::comm {
namespace {

class Done : public Pending {
public:
  absl::Status wait() override { return absl::OkStatus(); }
};

class SingleCommunicator : public Communicator {
public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  absl::Status allToAll(const void *send, const std::vector<int64_t> &sendBytes,
                        void *recv,
                        const std::vector<int64_t> &recvBytes) override {
    if (sendBytes.size() != 1 || recvBytes.size() != 1 ||
        sendBytes[0] != recvBytes[0])
      return absl::InvalidArgumentError(
          "all-to-all on one rank must send to itself what it receives");
    if (send != recv && sendBytes[0] > 0)
      std::memmove(recv, send, size_t(sendBytes[0]));
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Pending>>
  startAllToAll(const void *send, const std::vector<int64_t> &sendBytes,
                void *recv, const std::vector<int64_t> &recvBytes) override {
    if (auto s = allToAll(send, sendBytes, recv, recvBytes); !s.ok())
      return s;
    return std::unique_ptr<Pending>(new Done());
  }
  absl::Status allReduceSum(float *, int64_t) override {
    return absl::OkStatus();
  }
  absl::Status allReduceSum(double *, int64_t) override {
    return absl::OkStatus();
  }
  absl::Status broadcast(void *, int64_t, int) override {
    return absl::OkStatus();
  }
  absl::Status barrier() override { return absl::OkStatus(); }
  [[noreturn]] void abort(int exitCode) override { std::_Exit(exitCode); }
  absl::StatusOr<std::unique_ptr<Communicator>> split(int, int) override {
    return createSingleCommunicator();
  }
};
} // namespace

std::unique_ptr<Communicator> createSingleCommunicator() {
  return std::make_unique<SingleCommunicator>();
}

bool launchedByMpi() {
  for (const char *name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name))
      return true;
  return false;
}

} // namespace moert::comm
