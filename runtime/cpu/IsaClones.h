//===- IsaClones.h - hot loops compiled once per ISA ------------*- C++ -*-===//
//
// The build targets baseline x86-64. A function marked MOERT_ISA_CLONES is
// compiled for AVX-512 (x86-64-v4), AVX2 (x86-64-v3) and the baseline, and
// the loader picks the best clone the machine runs. Helpers it calls must be
// inlined into it (MOERT_ISA_INLINE) to use the clone's instructions.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_ISACLONES_H
#define MOERT_CPU_ISACLONES_H

#define MOERT_ISA_CLONES                                                       \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define MOERT_ISA_INLINE [[gnu::always_inline]] inline

#endif // MOERT_CPU_ISACLONES_H
