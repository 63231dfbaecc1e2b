//===- ActivationStorage.h - the dtype each activation is stored in -*- C++ -*-===//
//
// The runtime keeps activations in fp32, except a bf16-typed value whose
// every reader rounds it to bf16 before using it (runtime/artifact/
// Bf16Activations.h): that one is stored rounded, which changes no result
// and halves its memory. The buffer plan sizes values by this and the
// artifact records it.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_ARTIFACT_ACTIVATIONSTORAGE_H
#define MOEC_ARTIFACT_ACTIVATIONSTORAGE_H

#include "mlir/IR/Value.h"

namespace mlir::moe {

/// Bytes of one element of type `elementType` as the runtime stores values
/// that are not stored as bf16: floating-point values in fp32 (compute is
/// fp32-accumulated whatever the weights' dtype), integers at their width.
int64_t storageBytes(Type elementType);

struct ActivationStorage {
  /// Whether values that lose nothing by it are stored as bf16 (`moec
  /// compile --f32-activations` turns it off).
  bool bf16 = true;

  /// Whether the runtime stores `value`, an op's result, as bf16.
  bool storedAsBf16(Value value) const;

  /// Bytes of one element of `value` as the runtime stores it.
  int64_t elementBytes(Value value) const;
};

} // namespace mlir::moe

#endif // MOEC_ARTIFACT_ACTIVATIONSTORAGE_H
