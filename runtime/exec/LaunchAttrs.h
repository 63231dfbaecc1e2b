//===- LaunchAttrs.h - reading a bound launch, for any backend --*- C++ -*-===//
//
// The kernel's attributes and the shapes of its bound tensors, read the same
// way by every backend's launch table.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXEC_LAUNCHATTRS_H
#define MOERT_EXEC_LAUNCHATTRS_H

#include "runtime/exec/Backend.h"

#include <string>

namespace moert::launch_attrs {

inline int64_t attr(const KernelLaunch &launch, size_t i) {
  return launch.kernel->int_attrs()->Get(i);
}
/// An optional trailing integer attribute (absent in older artifacts).
inline int64_t attrOr(const KernelLaunch &launch, size_t i, int64_t otherwise) {
  auto *attrs = launch.kernel->int_attrs();
  return attrs && i < attrs->size() ? attrs->Get(i) : otherwise;
}
inline double floatAttr(const KernelLaunch &launch, size_t i) {
  return launch.kernel->float_attrs()->Get(i);
}
inline std::string stream(const KernelLaunch &launch) {
  return launch.kernel->stream() ? launch.kernel->stream()->str() : "";
}
inline int64_t lastDim(const TensorRef &t) { return t.shape.back(); }
inline int64_t rows(const TensorRef &t) { return t.numElements() / lastDim(t); }

/// The expert-parallel degree of a fused MoE launch or of a stack of
/// experts (1 for other ops).
inline int64_t expertSplit(const KernelLaunch &launch) {
  switch (launch.kernel->op()) {
  case fb::OpKind::FusedExperts:
  case fb::OpKind::FusedExpertsTrain:
  case fb::OpKind::FusedExpertsGrad:
    return attrOr(launch, 2, 1);
  case fb::OpKind::Stack:
    return attrOr(launch, 0, 1);
  default:
    return 1;
  }
}

} // namespace moert::launch_attrs

#endif // MOERT_EXEC_LAUNCHATTRS_H
