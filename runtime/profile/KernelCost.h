//===- KernelCost.h - the work each kernel of an artifact does --*- C++ -*-===//
//
// FLOPs and bytes of one kernel launch, from its op, attributes and static
// shapes alone, so that a profile can say how far each kernel is from the
// machine's ceilings. Products count 2 FLOPs per multiply-add, as
// `moec stats` counts them (a kernel's product FLOPs summed over a forward
// program equal flops_per_token x tokens); other arithmetic counts one FLOP
// per operation, estimated per element. Bytes are compulsory traffic: every
// operand read once and every result written once (an embedding reads only
// the rows it gathers, a fused MoE block the weights of at most as many
// experts as it routes rows, a cache write the rows it stores). Cached
// attention counts the whole cache: an upper bound, since positions are
// known only at run time.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_PROFILE_KERNELCOST_H
#define MOERT_PROFILE_KERNELCOST_H

#include "runtime/artifact/Artifact.h"

namespace moert::profile {

struct KernelCost {
  double flops = 0;
  double bytes = 0;
  /// Whether the kernel is made of products (GEMMs, attention): its FLOPs
  /// are those `moec stats` counts, and the GEMM rate is its ceiling.
  bool products = false;
};

KernelCost kernelCost(const fb::Model &model, const fb::Kernel &kernel);

} // namespace moert::profile

#endif // MOERT_PROFILE_KERNELCOST_H
