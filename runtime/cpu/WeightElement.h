//===- WeightElement.h - one element of a weight as fp32 --------*- C++ -*-===//
//
// Internal to the CPU kernels: for loops that read weights element by element
// (norm scales, embedding rows, the fp32 fallback of bf16 GEMMs).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_WEIGHTELEMENT_H
#define MOERT_CPU_WEIGHTELEMENT_H

#include "runtime/base/Float16.h"
#include "runtime/cpu/Kernels.h"

namespace moert::cpu {

inline float weightElement(Weight w, int64_t i) {
  switch (w.dtype) {
  case DType::kBF16:
    return bf16ToFloat(static_cast<const uint16_t *>(w.data)[i]);
  case DType::kF16:
    return f16ToFloat(static_cast<const uint16_t *>(w.data)[i]);
  default:
    return static_cast<const float *>(w.data)[i];
  }
}

} // namespace moert::cpu

#endif // MOERT_CPU_WEIGHTELEMENT_H
