//===- FusedExpertsExchange.cpp - a fused MoE block split over ranks ------===//
//
// The rows routed to an expert travel to the rank that holds it. Every rank
// of the expert group routes its own tokens; its grouped rows ascend by
// expert, so the rows for each rank are one contiguous block (rank p holds
// experts [p L, (p + 1) L)). First the per-expert row counts are exchanged
// (dropless: any rank may receive any number of rows), then the rows. A rank
// receives, from each source in rank order, its rows for each of its
// experts; the experts phase reads them in place through a routing of its
// own (one slot per received row, grouped by expert and then by source).
// Since the sources hold consecutive stretches of the batch, an expert sees
// its rows in the order one process would, and runs the same GEMMs. The
// results travel back in the order they came, landing in the sender's
// grouped-row order, and are combined as the one-process kernel combines
// staged rows.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/ExpertPhases.h"
#include "runtime/cpu/Scratch.h"

#include <cstring>

namespace moert::cpu {
namespace {
struct ExchangeScratch;
template <typename T, int Slot> T *scratch(size_t count) {
  return threadScratch<T, ExchangeScratch, Slot>(count);
}

/// How one exchange of a block is laid out, from the counts both ways.
struct Exchange {
  int ranks = 1;
  int64_t local = 0;              // experts per rank
  std::vector<int64_t> received;  // [ranks * local]: rows from p for expert j
  std::vector<int64_t> sentRows, receivedRows; // per rank
  ExpertRouting routing; // over the received rows: k = 1, `local` experts

  std::vector<int64_t> bytes(const std::vector<int64_t> &rows,
                             int64_t rowBytes) const {
    std::vector<int64_t> out(rows.size());
    for (size_t p = 0; p < rows.size(); ++p)
      out[p] = rows[p] * rowBytes;
    return out;
  }
};

/// Exchanges the per-expert counts and lays out the received rows.
absl::Status planExchange(const ExpertRouting &sent, comm::Communicator &group,
                          Exchange &x) {
  x.ranks = group.size();
  x.local = sent.experts / x.ranks;
  x.received.assign(sent.experts, 0);
  std::vector<int64_t> each(x.ranks, x.local * int64_t(sizeof(int64_t)));
  if (auto s = group.allToAll(sent.counts.data(), each, x.received.data(), each);
      !s.ok())
    return s;
  x.sentRows.assign(x.ranks, 0);
  x.receivedRows.assign(x.ranks, 0);
  for (int p = 0; p < x.ranks; ++p)
    for (int64_t j = 0; j < x.local; ++j) {
      x.sentRows[p] += sent.counts[p * x.local + j];
      x.receivedRows[p] += x.received[p * x.local + j];
    }

  // The received rows' own routing: row i (in arrival order) is slot i.
  ExpertRouting &r = x.routing;
  int64_t rows = 0;
  for (int64_t n : x.receivedRows)
    rows += n;
  r.tokens = rows;
  r.k = 1;
  r.experts = x.local;
  r.weights.assign(rows, 1.0f);
  r.indices.assign(rows, 0);
  r.counts.assign(x.local, 0);
  r.first.assign(x.local, 0);
  r.slots.assign(rows, 0);
  r.rowOfSlot.assign(rows, 0);
  for (int p = 0; p < x.ranks; ++p)
    for (int64_t j = 0; j < x.local; ++j)
      r.counts[j] += x.received[p * x.local + j];
  for (int64_t j = 1; j < x.local; ++j)
    r.first[j] = r.first[j - 1] + r.counts[j - 1];
  std::vector<int64_t> next = r.first;
  int64_t slot = 0;
  for (int p = 0; p < x.ranks; ++p)
    for (int64_t j = 0; j < x.local; ++j)
      for (int64_t i = 0; i < x.received[p * x.local + j]; ++i, ++slot) {
        int64_t row = next[j]++;
        r.slots[row] = int32_t(slot);
        r.rowOfSlot[slot] = row;
        r.indices[slot] = int32_t(j);
      }
  return absl::OkStatus();
}

/// This rank's experts as a block of their own.
MoeBlockWeights localBlock(const MoeBlockWeights &block, int64_t local) {
  MoeBlockWeights mine = block;
  mine.experts = local;
  return mine;
}

/// dst[i] = src[grouped row of slot i], rows of `width` floats: results in
/// the order their rows arrived.
void ungroup(const ExpertRouting &r, const float *src, int64_t width,
             float *dst, int64_t dstStride) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < r.tokens; ++i)
    std::memcpy(dst + i * dstStride, src + r.rowOfSlot[i] * width,
                width * sizeof(float));
}
} // namespace

absl::Status exchangeExpertsForward(const float *x,
                                    const ExpertRouting &routing,
                                    const MoeBlockWeights &block,
                                    comm::Communicator &group, float *out) {
  int64_t d = block.d, rows = routing.tokens * routing.k;
  Exchange ex;
  if (auto s = planExchange(routing, group, ex); !s.ok())
    return s;
  float *send = scratch<float, 0>(rows * d);
  gatherRows(x, d, routing.slots.data(), rows, routing.k, send, nullptr,
             Threads::kAll);
  int64_t received = ex.routing.tokens, rowBytes = d * int64_t(sizeof(float));
  float *in = scratch<float, 1>(received * d);
  if (auto s = group.allToAll(send, ex.bytes(ex.sentRows, rowBytes), in,
                              ex.bytes(ex.receivedRows, rowBytes));
      !s.ok())
    return s;

  float *results = scratch<float, 2>(received * d);
  if (auto s = expertsForward(in, ex.routing, localBlock(block, ex.local),
                              nullptr, results);
      !s.ok())
    return s;
  float *back = scratch<float, 3>(received * d);
  ungroup(ex.routing, results, d, back, d);
  float *staged = send; // the sent rows are no longer needed
  if (auto s = group.allToAll(back, ex.bytes(ex.receivedRows, rowBytes),
                              staged, ex.bytes(ex.sentRows, rowBytes));
      !s.ok())
    return s;
  sumStagedRows(routing, staged, d, /*weighted=*/true, out);
  return absl::OkStatus();
}

absl::Status exchangeExpertsBackward(const float *x, const float *dout,
                                     const ExpertRouting &routing,
                                     const MoeBlockWeights &block,
                                     comm::Communicator &group, float *dx,
                                     float *dweights, float *dgate, float *dup,
                                     float *ddown) {
  int64_t d = block.d, rows = routing.tokens * routing.k, k = routing.k;
  Exchange ex;
  if (auto s = planExchange(routing, group, ex); !s.ok())
    return s;
  // Out: each grouped row as [x | dout | routing weight].
  int64_t width = 2 * d + 1;
  float *send = scratch<float, 0>(rows * width);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < rows; ++g) {
    int32_t slot = routing.slots[g];
    float *row = send + g * width;
    std::memcpy(row, x + (slot / k) * d, d * sizeof(float));
    std::memcpy(row + d, dout + (slot / k) * d, d * sizeof(float));
    row[2 * d] = routing.weights[slot];
  }
  int64_t received = ex.routing.tokens;
  float *in = scratch<float, 1>(received * width);
  int64_t outBytes = width * int64_t(sizeof(float));
  if (auto s = group.allToAll(send, ex.bytes(ex.sentRows, outBytes), in,
                              ex.bytes(ex.receivedRows, outBytes));
      !s.ok())
    return s;

  float *inX = scratch<float, 2>(received * d);
  float *inDout = scratch<float, 3>(received * d);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < received; ++i) {
    const float *row = in + i * width;
    std::memcpy(inX + i * d, row, d * sizeof(float));
    std::memcpy(inDout + i * d, row + d, d * sizeof(float));
    ex.routing.weights[i] = row[2 * d];
  }
  float *inputGrads = scratch<float, 4>(received * d);
  std::vector<float> weightGrads(received);
  if (auto s = expertsBackward(inX, inDout, ex.routing,
                               localBlock(block, ex.local), nullptr,
                               inputGrads, weightGrads.data(), dgate, dup,
                               ddown);
      !s.ok())
    return s;

  // Back: each received row as [its input gradient | its weight's].
  int64_t backWidth = d + 1, backBytes = backWidth * int64_t(sizeof(float));
  float *back = scratch<float, 5>(received * backWidth);
  ungroup(ex.routing, inputGrads, d, back, backWidth);
  for (int64_t i = 0; i < received; ++i)
    back[i * backWidth + d] = weightGrads[i];
  float *returned = scratch<float, 6>(rows * backWidth);
  if (auto s = group.allToAll(back, ex.bytes(ex.receivedRows, backBytes),
                              returned, ex.bytes(ex.sentRows, backBytes));
      !s.ok())
    return s;
  float *staged = send;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < rows; ++g) {
    std::memcpy(staged + g * d, returned + g * backWidth, d * sizeof(float));
    dweights[routing.slots[g]] = returned[g * backWidth + d];
  }
  sumStagedRows(routing, staged, d, /*weighted=*/false, dx);
  return absl::OkStatus();
}

} // namespace moert::cpu
