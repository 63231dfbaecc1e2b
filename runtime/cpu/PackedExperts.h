//===- PackedExperts.h - expert weights repacked for the GEMM ---*- C++ -*-===//
//
// Internal to the fused MoE forward. A GEMM over weights in their checkpoint
// layout repacks them on every call into the blocked layout its kernels
// read, which for the few rows an expert gets in a small batch costs about
// as much as the product itself. When a launch's weights are constant
// (inference, generation) the CPU backend repacks each fused block's experts
// once, at prepare time, into oneDNN's blocked layout:
//  - gate and up as one matrix per expert, in column chunks of
//    kGateUpChunk neurons, each chunk its gate neurons then the same up
//    neurons, so one GEMM gives a chunk's SwiGLU inputs side by side while
//    they are in cache;
//  - down in column chunks of kDownChunk outputs.
// The chunks are the column blocks of the tasks of PackedExpertsForward.cpp.
// Every GEMM over them runs on the calling thread with a fixed plan per row
// count, so a row's result does not depend on the thread count. The packed
// copy costs the experts' weight bytes again.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_PACKEDEXPERTS_H
#define MOERT_CPU_PACKEDEXPERTS_H

#include "runtime/cpu/Kernels.h"

#include "absl/status/statusor.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace moert::cpu {

class PackedExperts {
public:
  static constexpr int64_t kGateUpChunk = 256; // neurons per gate/up chunk
  static constexpr int64_t kDownChunk = 256;   // outputs per down chunk
  static constexpr int64_t kRowBlock = 64;     // most rows of one GEMM

  /// `block`'s experts repacked; null where its weights are not repacked
  /// (fp16, bf16 where the GEMM widens bf16 to fp32, or empty matrices).
  static absl::StatusOr<std::shared_ptr<const PackedExperts>>
  pack(const MoeBlockWeights &block);

  ~PackedExperts();

  bool bf16() const { return bf16_; }
  int64_t gateUpChunks() const { return chunks(f_, kGateUpChunk); }
  int64_t downChunks() const { return chunks(d_, kDownChunk); }
  /// Neurons of gate/up chunk j, outputs of down chunk j.
  int64_t gateUpWidth(int64_t j) const { return width(f_, kGateUpChunk, j); }
  int64_t downWidth(int64_t j) const { return width(d_, kDownChunk, j); }

  /// tile [rows, 2 * gateUpWidth(j)] = x . chunk j of expert e's gate then
  /// up, transposed; x [rows, d] (fp32 or bf16, as bf16()).
  /// 1 <= rows <= kRowBlock.
  absl::Status gateUp(int64_t e, int64_t j, const void *x, int64_t rows,
                      float *tile) const;
  /// tile [rows, downWidth(j)] = hidden . chunk j of expert e's down,
  /// transposed; hidden [rows, f] as x above.
  absl::Status down(int64_t e, int64_t j, const void *hidden, int64_t rows,
                    float *tile) const;

  /// A weight shape [k, n] in the blocked layout with its GEMMs
  /// (PackedExperts.cpp).
  struct Shape;

private:
  /// One family (gate/up or down): every expert's chunks, one after the
  /// other, at `offsets` (bytes within an expert) from expert e's start.
  struct Family {
    std::vector<std::shared_ptr<const Shape>> shapes; // by chunk
    std::vector<size_t> offsets;                      // by chunk
    size_t expertBytes = 0;
    char *data = nullptr;
  };

  PackedExperts(int64_t d, int64_t f, bool bf16) : d_(d), f_(f), bf16_(bf16) {}
  static int64_t chunks(int64_t n, int64_t chunk) {
    return (n + chunk - 1) / chunk;
  }
  static int64_t width(int64_t n, int64_t chunk, int64_t j) {
    return std::min(chunk, n - j * chunk);
  }
  absl::Status packFamily(Family &family, const Weight &first,
                          const Weight *second, int64_t experts, int64_t k,
                          int64_t n, int64_t chunk);
  absl::Status run(const Family &family, int64_t e, int64_t j, const void *a,
                   int64_t rows, float *c) const;

  int64_t d_, f_;
  bool bf16_;
  Family gateUp_, down_;
};

} // namespace moert::cpu

#endif // MOERT_CPU_PACKEDEXPERTS_H
