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
  profile::Ceilings ceilings;
  std::string ceilingsSource;
};

/// From --trace, --trace-steps, --profile, --profile-json and --ceilings.
absl::StatusOr<ProfileRun> profileFromFlags();

/// Writes the trace, prints the summary and writes --profile-json.
absl::Status finishProfile(const ProfileRun &run);

/// The ceilings --ceilings names, or the cache's (measured once if absent);
/// `source` says where they came from.
absl::StatusOr<profile::Ceilings> ceilingsFromFlags(std::string &source,
                                                    bool remeasure);

} // namespace moert

#endif // MOERT_TOOLS_PROFILEFLAGS_H
