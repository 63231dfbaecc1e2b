//===- Bf16Activations.h - where an activation may be stored as bf16 -*- C++ -*-===//
//
// A model compiled with bf16 compute rounds an activation to bf16 on its way
// into a product. Where every reader of a value does that, storing the value
// rounded loses nothing (with native bf16 kernels; runtime/exec/Fp32View.h)
// and halves its memory: the compiler then types it
// BF16 in the artifact. These are the kernel slots for which that holds: the
// operands a kernel only ever reads as a product's bf16 operand, and the
// results a kernel can write rounded. One table, read by the compiler (what
// it stores as bf16), the artifact check (what a file may ask for) and the
// backends (what their kernels receive).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ARTIFACT_BF16ACTIVATIONS_H
#define MOERT_ARTIFACT_BF16ACTIVATIONS_H

#include "moex_generated.h"

#include <cstddef>

namespace moert {

/// Whether operand `operand` of `op` may be a bf16 activation: the kernel
/// reads it only as a bf16 operand of its products.
constexpr bool readsBf16Activation(fb::OpKind op, size_t operand) {
  switch (op) {
  case fb::OpKind::Linear: // input
    return operand == 0;
  case fb::OpKind::LinearGradWeight: // input (operand 0 is the result's gradient)
    return operand == 1;
  case fb::OpKind::Attention:     // query, key, value
  case fb::OpKind::AttentionGrad: // the same (operand 3 is the output's gradient)
    return operand < 3;
  case fb::OpKind::FusedExperts: // the block's input, into the router and
  case fb::OpKind::FusedExpertsTrain: // expert GEMMs (and their backward)
  case fb::OpKind::FusedExpertsGrad:
    return operand == 0;
  default:
    return false;
  }
}

/// Whether result `result` of `op` may be a bf16 activation: the kernel can
/// write it rounded to bf16.
constexpr bool writesBf16Activation(fb::OpKind op, size_t result) {
  switch (op) {
  case fb::OpKind::Linear:
  case fb::OpKind::Rope:
  case fb::OpKind::Attention:
  case fb::OpKind::RmsNorm:
    return result == 0;
  default:
    return false;
  }
}

} // namespace moert

#endif // MOERT_ARTIFACT_BF16ACTIVATIONS_H
