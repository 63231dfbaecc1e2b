//===- ProfileFlags.h - --trace, --profile and their outputs ----*- C++ -*-===//
//
// The profiling flags that inference and `train` share: a profiler made
// from them (its output paths checked and the ceilings read or measured
// before the run, not after it), and what is written when the run ends.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TOOLS_PROFILEFLAGS_H
#define MOERT_TOOLS_PROFILEFLAGS_H

#include "runtime/profile/Ceilings.h"
#include "runtime/profile/Profiler.h"

#include "absl/status/statusor.h"

#include <memory>

namespace moert {

struct ProfileRun {
  std::unique_ptr<profile::Profiler> profiler; // null when nothing is asked
  std::string tracePath; // this rank's, or empty
  std::string jsonPath;  // --profile-json, or empty
  bool printSummary = false;
  profile::Ceilings ceilings;
  std::string ceilingsSource;
};

/// From --trace, --trace-steps, --profile, --profile-json and --ceilings.
absl::StatusOr<ProfileRun> profileFromFlags();

/// Writes the trace, prints the summary and writes --profile-json.
absl::Status finishProfile(const ProfileRun &run);

/// The ceilings file: --ceilings, else the user's cache.
absl::StatusOr<std::string> ceilingsPath();

} // namespace moert

#endif // MOERT_TOOLS_PROFILEFLAGS_H
