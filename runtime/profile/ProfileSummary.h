//===- ProfileSummary.h - where a run's time went, and how well -*- C++ -*-===//
//
// Groups the profiler's kernel times by op kind, by layer and by kernel,
// and says for each group how close it runs to this machine's ceilings:
// its arithmetic intensity (FLOPs per byte) against the ridge point
// (GEMM rate / bandwidth) classes it as compute- or memory-bound, and its
// achieved GFLOP/s or GB/s is taken as a percentage of that ceiling.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_PROFILE_PROFILESUMMARY_H
#define MOERT_PROFILE_PROFILESUMMARY_H

#include "runtime/profile/Ceilings.h"
#include "runtime/profile/Profiler.h"

#include <nlohmann/json.hpp>

#include <string>

namespace moert::profile {

/// The summary as JSON (the --profile-json document): steps, ceilings,
/// rows by op kind, by layer and by kernel, and the step's efficiency.
nlohmann::json summarize(const Profiler &profiler, const Ceilings &ceilings,
                         const std::string &ceilingsSource);

/// The same summary as the table --profile prints.
std::string formatSummary(const nlohmann::json &summary);

} // namespace moert::profile

#endif // MOERT_PROFILE_PROFILESUMMARY_H
