//===- IsaClones.h - hot loops compiled once per ISA ------------*- C++ -*-===//
//
// The build targets baseline x86-64. A function marked MOERT_ISA_CLONES is
// compiled for AVX-512 (x86-64-v4), AVX2 (x86-64-v3) and the baseline, and
// the loader picks the best clone the machine runs. Helpers it calls must be
// inlined into it (MOERT_ISA_INLINE) to use the clone's instructions.
// Functions written for one ISA (gnu::target) are picked by the CPU checks
// below.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_ISACLONES_H
#define MOERT_CPU_ISACLONES_H

#define MOERT_ISA_CLONES                                                       \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define MOERT_ISA_INLINE [[gnu::always_inline]] inline

/// Attributes of functions written for AVX-512 (with FMA), and for
/// AVX512-BF16 too; 512-bit vectors, which GCC otherwise avoids. Clang
/// (the fuzzing build) ignores a target attribute naming a feature it does
/// not know, such as GCC's prefer-vector-width, so it gets none.
#if defined(__clang__)
#define MOERT_PREFER_512 ""
#else
#define MOERT_PREFER_512 ",prefer-vector-width=512"
#endif
#define MOERT_AVX512                                                           \
  gnu::target("avx512f,avx512bw,avx512dq,avx512vl,fma" MOERT_PREFER_512)
#define MOERT_AVX512_BF16                                                      \
  gnu::target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma"              \
              MOERT_PREFER_512)

namespace moert::cpu {

/// Whether this CPU runs AVX-512 code (F, BW, DQ, VL, with FMA): the
/// kernels' hand-picked AVX-512 functions.
inline bool cpuHasAvx512() {
  static const bool has =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  return has;
}

/// Whether it also runs AVX512-BF16 (bf16 dot products and conversions).
inline bool cpuHasAvx512Bf16() {
  static const bool has =
      cpuHasAvx512() && __builtin_cpu_supports("avx512bf16");
  return has;
}

} // namespace moert::cpu

#endif // MOERT_CPU_ISACLONES_H
