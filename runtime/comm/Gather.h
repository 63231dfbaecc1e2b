//===- Gather.h - collecting the ranks' shares on one rank ------*- C++ -*-===//

#ifndef MOERT_COMM_GATHER_H
#define MOERT_COMM_GATHER_H

#include "runtime/comm/Communicator.h"

#include <cstdint>
#include <vector>

namespace moert::comm {

/// Every rank's `bytes` at `data` (the same size on each), concatenated in
/// rank order on rank 0 of `group`; empty on the others.
inline absl::StatusOr<std::vector<uint8_t>>
gatherOnFirst(Communicator &group, const void *data, int64_t bytes) {
  int ranks = group.size();
  std::vector<int64_t> send(ranks, 0), recv(ranks, 0);
  send[0] = bytes;
  if (group.rank() == 0)
    recv.assign(ranks, bytes);
  std::vector<uint8_t> all(group.rank() == 0 ? size_t(bytes) * ranks : 0);
  if (auto s = group.allToAll(data, send, all.data(), recv); !s.ok())
    return s;
  return all;
}

} // namespace moert::comm

#endif // MOERT_COMM_GATHER_H
