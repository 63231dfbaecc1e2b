//===- CalibrateCommand.cpp - moe-run calibrate ---------------------------===//
//
//   moe-run calibrate [--force] [--ceilings FILE]
//
// Prints this machine's ceilings (GEMM rate per dtype, triad bandwidth) on
// the process's OpenMP threads: from the cache when it holds them for this
// thread count, else measured (a few seconds) and cached. --force measures
// again; with --ceilings, FILE is the cache.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Printable.h"
#include "runtime/profile/Ceilings.h"
#include "runtime/tools/ProfileFlags.h"

#include "absl/flags/flag.h"

#include <cstdio>
#include <iostream>

ABSL_FLAG(bool, force, false, "calibrate: measure again even when cached");

int runCalibrate() {
  auto fail = [](const absl::Status &status) {
    std::cerr << "moe-run calibrate: error: "
              << moert::printable(status.message()) << "\n";
    return 1;
  };
  absl::StatusOr<std::string> path = moert::ceilingsPath();
  if (!path.ok())
    return fail(path.status());
  bool measured = false;
  absl::StatusOr<moert::profile::Ceilings> ceilings =
      moert::profile::cachedCeilings(*path, absl::GetFlag(FLAGS_force),
                                     measured);
  if (!ceilings.ok())
    return fail(ceilings.status());
  std::printf("ceilings: %s (%s)\nthreads: %d\ngemm_gflops_f32: %.1f\n"
              "gemm_gflops_bf16: %.1f\nbandwidth_gb_per_s: %.1f\n"
              "read_gb_per_s: %.1f\n",
              moert::printable(*path).c_str(), measured ? "measured" : "cached",
              ceilings->threads, ceilings->gemmGflopsF32,
              ceilings->gemmGflopsBf16, ceilings->bandwidthGbs,
              ceilings->readBandwidthGbs);
  return 0;
}
