//===- race_probe.cpp - proves scripts/tsan.sh can see an OpenMP race -----===//
//
// A shared counter updated from an OpenMP loop without a reduction: a data
// race, which ThreadSanitizer with Archer must report, so that a clean run
// of the kernels' tests means something. The reduction below is not one.
//
//===----------------------------------------------------------------------===//

#include <cstdio>

int main() {
  long racy = 0, reduced = 0;
#pragma omp parallel for
  for (int i = 0; i < 100000; ++i)
    racy += i;
#pragma omp parallel for reduction(+ : reduced)
  for (int i = 0; i < 100000; ++i)
    reduced += i;
  std::printf("%ld %ld\n", racy, reduced);
  return 0;
}
