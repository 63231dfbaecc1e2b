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
// results travel back in the order they came and are combined as the
// one-process kernel combines staged rows.
//
// With several chunks, each covers a consecutive stretch of the batch's
// tokens (so each expert's rows of a chunk are a stretch of its grouped
// rows) and the exchanges are non-blocking: chunk c + 1's rows travel while
// chunk c's experts run, and chunk c's results travel back while chunk
// c + 1's run. One chunk gives the one-process GEMMs exactly; more split
// each expert's rows over as many GEMMs.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/ExpertPhases.h"
#include "runtime/cpu/Scratch.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace moert::cpu {
namespace {
struct ExchangeScratch;
template <typename T, int Slot> T *scratch(size_t count) {
  return threadScratch<T, ExchangeScratch, Slot>(count);
}

/// One chunk of a block's exchange, both ways.
struct Chunk {
  std::vector<int64_t> counts; // [E]: rows sent for each expert
  std::vector<int64_t> begin;  // [E]: the grouped row of the first of them
  std::vector<int64_t> sentRows, receivedRows; // per rank
  int64_t sent = 0, sentAt = 0, receivedAt = 0; // rows; offsets in all chunks
  ExpertRouting received; // over the rows received: k = 1, L experts

  std::vector<int64_t> bytes(const std::vector<int64_t> &rows,
                             int64_t rowFloats) const {
    std::vector<int64_t> out(rows.size());
    for (size_t p = 0; p < rows.size(); ++p)
      out[p] = rows[p] * rowFloats * int64_t(sizeof(float));
    return out;
  }
  /// Calls body(g, i) for the chunk's grouped rows g in send order i.
  template <typename Body> void forEachSent(const Body &body) const {
    int64_t i = 0;
    for (size_t e = 0; e < counts.size(); ++e)
      for (int64_t r = 0; r < counts[e]; ++r, ++i)
        body(begin[e] + r, i);
  }
};

/// Splits the routed rows into `count` chunks of consecutive tokens.
std::vector<Chunk> chunkRows(const ExpertRouting &routing, int64_t count) {
  count = std::max<int64_t>(1, std::min(count, routing.tokens));
  std::vector<Chunk> chunks(count);
  for (Chunk &chunk : chunks) {
    chunk.counts.assign(routing.experts, 0);
    chunk.begin.assign(routing.experts, -1);
  }
  for (int64_t e = 0; e < routing.experts; ++e)
    for (int64_t g = routing.first[e]; g < routing.first[e] + routing.counts[e];
         ++g) {
      int64_t token = routing.slots[g] / routing.k;
      Chunk &chunk = chunks[token * count / routing.tokens];
      if (chunk.counts[e]++ == 0)
        chunk.begin[e] = g;
    }
  int64_t at = 0;
  for (Chunk &chunk : chunks) {
    for (int64_t n : chunk.counts)
      chunk.sent += n;
    chunk.sentAt = at;
    at += chunk.sent;
  }
  return chunks;
}

/// The routing of the rows a rank receives from each source in rank order,
/// for each of its `local` experts (`received`: [ranks][local] counts).
void routeReceived(const int64_t *received, int ranks, int64_t local,
                   ExpertRouting &r) {
  int64_t rows = 0;
  for (int64_t i = 0; i < ranks * local; ++i)
    rows += received[i];
  r.tokens = rows;
  r.k = 1;
  r.experts = local;
  r.weights.assign(rows, 1.0f);
  r.indices.assign(rows, 0);
  r.counts.assign(local, 0);
  r.first.assign(local, 0);
  r.slots.assign(rows, 0);
  r.rowOfSlot.assign(rows, 0);
  for (int p = 0; p < ranks; ++p)
    for (int64_t j = 0; j < local; ++j)
      r.counts[j] += received[p * local + j];
  for (int64_t j = 1; j < local; ++j)
    r.first[j] = r.first[j - 1] + r.counts[j - 1];
  std::vector<int64_t> next = r.first;
  int64_t slot = 0;
  for (int p = 0; p < ranks; ++p)
    for (int64_t j = 0; j < local; ++j)
      for (int64_t i = 0; i < received[p * local + j]; ++i, ++slot) {
        int64_t row = next[j]++;
        r.slots[row] = int32_t(slot);
        r.rowOfSlot[slot] = row;
        r.indices[slot] = int32_t(j);
      }
}

/// Exchanges every chunk's per-expert counts (one blocking all-to-all) and
/// lays out what each chunk receives.
absl::Status exchangeCounts(comm::Communicator &group, int64_t experts,
                            std::vector<Chunk> &chunks) {
  int ranks = group.size();
  int64_t local = experts / ranks, count = int64_t(chunks.size());
  // Per rank: [chunk][its local experts].
  std::vector<int64_t> send(ranks * count * local), received(send.size());
  for (int p = 0; p < ranks; ++p)
    for (int64_t c = 0; c < count; ++c)
      std::copy_n(chunks[c].counts.begin() + p * local, local,
                  send.begin() + (p * count + c) * local);
  std::vector<int64_t> each(ranks, count * local * int64_t(sizeof(int64_t)));
  if (auto s = group.allToAll(send.data(), each, received.data(), each);
      !s.ok())
    return s;
  int64_t at = 0;
  for (int64_t c = 0; c < count; ++c) {
    Chunk &chunk = chunks[c];
    std::vector<int64_t> mine(ranks * local);
    chunk.sentRows.assign(ranks, 0);
    chunk.receivedRows.assign(ranks, 0);
    for (int p = 0; p < ranks; ++p)
      for (int64_t j = 0; j < local; ++j) {
        mine[p * local + j] = received[(p * count + c) * local + j];
        chunk.receivedRows[p] += mine[p * local + j];
        chunk.sentRows[p] += chunk.counts[p * local + j];
      }
    routeReceived(mine.data(), ranks, local, chunk.received);
    chunk.receivedAt = at;
    at += chunk.received.tokens;
  }
  return absl::OkStatus();
}

/// The pipeline of both directions. `pack(c, rows)` writes chunk c's
/// outgoing rows (`outFloats` each, in send order); `compute(c, in, back)`
/// turns the rows chunk c received into its results (`backFloats` each, in
/// arrival order); `returned` gets every chunk's results in its send order,
/// chunk after chunk.
absl::Status pipeline(
    comm::Communicator &group, std::vector<Chunk> &chunks, int64_t outFloats,
    int64_t backFloats, const std::function<void(size_t, float *)> &pack,
    const std::function<absl::Status(size_t, const float *, float *)> &compute,
    float *returned) {
  const Chunk &last = chunks.back();
  int64_t sent = last.sentAt + last.sent;
  int64_t received = last.receivedAt + last.received.tokens;
  float *out = scratch<float, 0>(sent * outFloats);
  float *in = scratch<float, 1>(received * outFloats);
  float *back = scratch<float, 2>(received * backFloats);
  auto start = [&](size_t c) {
    const Chunk &chunk = chunks[c];
    pack(c, out + chunk.sentAt * outFloats);
    return group.startAllToAll(out + chunk.sentAt * outFloats,
                               chunk.bytes(chunk.sentRows, outFloats),
                               in + chunk.receivedAt * outFloats,
                               chunk.bytes(chunk.receivedRows, outFloats));
  };
  std::vector<std::unique_ptr<comm::Pending>> going(chunks.size()),
      returning(chunks.size());
  absl::StatusOr<std::unique_ptr<comm::Pending>> first = start(0);
  if (!first.ok())
    return first.status();
  going[0] = std::move(*first);
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (c + 1 < chunks.size()) {
      absl::StatusOr<std::unique_ptr<comm::Pending>> next = start(c + 1);
      if (!next.ok())
        return next.status();
      going[c + 1] = std::move(*next);
    }
    if (auto s = going[c]->wait(); !s.ok())
      return s;
    const Chunk &chunk = chunks[c];
    float *results = back + chunk.receivedAt * backFloats;
    if (auto s = compute(c, in + chunk.receivedAt * outFloats, results);
        !s.ok())
      return s;
    absl::StatusOr<std::unique_ptr<comm::Pending>> home = group.startAllToAll(
        results, chunk.bytes(chunk.receivedRows, backFloats),
        returned + chunk.sentAt * backFloats,
        chunk.bytes(chunk.sentRows, backFloats));
    if (!home.ok())
      return home.status();
    returning[c] = std::move(*home);
  }
  for (auto &pending : returning)
    if (auto s = pending->wait(); !s.ok())
      return s;
  return absl::OkStatus();
}

/// This rank's experts as a block of their own.
MoeBlockWeights localBlock(const MoeBlockWeights &block, int64_t local) {
  MoeBlockWeights mine = block;
  mine.experts = local;
  return mine;
}

/// dst[i] = src[grouped row of slot i] (`width` floats, dst rows `stride`
/// apart): results in the order their rows arrived.
void ungroup(const ExpertRouting &r, const float *src, int64_t width,
             float *dst, int64_t stride) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < r.tokens; ++i)
    std::memcpy(dst + i * stride, src + r.rowOfSlot[i] * width,
                width * sizeof(float));
}
} // namespace

absl::Status exchangeExpertsForward(const float *x,
                                    const ExpertRouting &routing,
                                    const MoeBlockWeights &block,
                                    comm::Communicator &group, int64_t chunks,
                                    float *out) {
  int64_t d = block.d, local = block.experts / group.size();
  std::vector<Chunk> parts = chunkRows(routing, chunks);
  if (auto s = exchangeCounts(group, block.experts, parts); !s.ok())
    return s;
  MoeBlockWeights mine = localBlock(block, local);
  auto pack = [&](size_t c, float *rows) {
    parts[c].forEachSent([&](int64_t g, int64_t i) {
      std::memcpy(rows + i * d, x + (routing.slots[g] / routing.k) * d,
                  d * sizeof(float));
    });
  };
  auto compute = [&](size_t c, const float *in, float *back) -> absl::Status {
    const ExpertRouting &r = parts[c].received;
    float *results = scratch<float, 3>(r.tokens * d);
    if (auto s = expertsForward(in, r, mine, nullptr, results); !s.ok())
      return s;
    ungroup(r, results, d, back, d);
    return absl::OkStatus();
  };
  int64_t rows = routing.tokens * routing.k;
  float *returned = scratch<float, 4>(rows * d);
  if (auto s = pipeline(group, parts, d, d, pack, compute, returned); !s.ok())
    return s;
  // One chunk sends, so gets back, its rows in grouped order already.
  float *staged = returned;
  if (parts.size() > 1) {
    staged = scratch<float, 5>(rows * d);
    for (const Chunk &chunk : parts)
      chunk.forEachSent([&](int64_t g, int64_t i) {
        std::memcpy(staged + g * d, returned + (chunk.sentAt + i) * d,
                    d * sizeof(float));
      });
  }
  sumStagedRows(routing, staged, d, /*weighted=*/true, out);
  return absl::OkStatus();
}

absl::Status exchangeExpertsBackward(const float *x, const float *dout,
                                     const ExpertRouting &routing,
                                     const MoeBlockWeights &block,
                                     comm::Communicator &group, int64_t chunks,
                                     float *dx, float *dweights, float *dgate,
                                     float *dup, float *ddown) {
  int64_t d = block.d, f = block.f, k = routing.k;
  int64_t local = block.experts / group.size();
  std::vector<Chunk> parts = chunkRows(routing, chunks);
  if (auto s = exchangeCounts(group, block.experts, parts); !s.ok())
    return s;
  MoeBlockWeights mine = localBlock(block, local);
  // Out: each row as [x | dout | routing weight]; back: [dx | dweight].
  int64_t outFloats = 2 * d + 1, backFloats = d + 1;
  auto pack = [&](size_t c, float *rows) {
    parts[c].forEachSent([&](int64_t g, int64_t i) {
      int32_t slot = routing.slots[g];
      float *row = rows + i * outFloats;
      std::memcpy(row, x + (slot / k) * d, d * sizeof(float));
      std::memcpy(row + d, dout + (slot / k) * d, d * sizeof(float));
      row[2 * d] = routing.weights[slot];
    });
  };
  // Weight gradients: the first chunk writes them, later ones add theirs.
  int64_t weights = local * f * d;
  float *later = parts.size() > 1 ? scratch<float, 6>(3 * weights) : nullptr;
  auto compute = [&](size_t c, const float *in, float *back) -> absl::Status {
    ExpertRouting &r = parts[c].received;
    float *inX = scratch<float, 7>(r.tokens * d);
    float *inDout = scratch<float, 8>(r.tokens * d);
    for (int64_t i = 0; i < r.tokens; ++i) {
      const float *row = in + i * outFloats;
      std::memcpy(inX + i * d, row, d * sizeof(float));
      std::memcpy(inDout + i * d, row + d, d * sizeof(float));
      r.weights[i] = row[2 * d];
    }
    float *inputGrads = scratch<float, 9>(r.tokens * d);
    std::vector<float> weightGrads(r.tokens);
    float *grads[3] = {dgate, dup, ddown};
    if (c > 0)
      grads[0] = later, grads[1] = later + weights, grads[2] = later + 2 * weights;
    if (auto s = expertsBackward(inX, inDout, r, mine, nullptr, inputGrads,
                                 weightGrads.data(), grads[0], grads[1],
                                 grads[2]);
        !s.ok())
      return s;
    float *totals[3] = {dgate, dup, ddown};
    for (int i = 0; c > 0 && i < 3; ++i)
      add(totals[i], grads[i], weights, totals[i]);
    ungroup(r, inputGrads, d, back, backFloats);
    for (int64_t i = 0; i < r.tokens; ++i)
      back[i * backFloats + d] = weightGrads[i];
    return absl::OkStatus();
  };
  int64_t rows = routing.tokens * k;
  float *returned = scratch<float, 10>(rows * backFloats);
  if (auto s = pipeline(group, parts, outFloats, backFloats, pack, compute,
                        returned);
      !s.ok())
    return s;
  float *staged = scratch<float, 11>(rows * d);
  for (const Chunk &chunk : parts)
    chunk.forEachSent([&](int64_t g, int64_t i) {
      const float *row = returned + (chunk.sentAt + i) * backFloats;
      std::memcpy(staged + g * d, row, d * sizeof(float));
      dweights[routing.slots[g]] = row[d];
    });
  sumStagedRows(routing, staged, d, /*weighted=*/false, dx);
  return absl::OkStatus();
}

} // namespace moert::cpu
