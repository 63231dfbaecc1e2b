//===- ProfileFlags.cpp - --trace, --profile and their outputs ------------===//

#include "runtime/tools/ProfileFlags.h"

#include "runtime/base/WriteFile.h"
#include "runtime/profile/ProfileSummary.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

#include <iostream>

ABSL_FLAG(std::string, trace, "",
          "write a Chrome trace (Perfetto, chrome://tracing) of the run: one "
          "event per kernel launch, inside its step and phase");
ABSL_FLAG(std::string, trace_steps, "",
          "trace only steps A:B (inclusive, from 1; either may be omitted)");
ABSL_FLAG(bool, profile, false,
          "print where the time went, by op kind, layer and kernel, against "
          "this machine's ceilings (moe-run calibrate)");
ABSL_FLAG(std::string, profile_json, "",
          "write the --profile summary as JSON (implies profiling)");
ABSL_FLAG(std::string, ceilings, "",
          "ceilings file to use instead of the cached measurement");

namespace moert {

absl::StatusOr<profile::Ceilings> ceilingsFromFlags(std::string &source,
                                                    bool remeasure) {
  if (std::string path = absl::GetFlag(FLAGS_ceilings); !path.empty()) {
    source = path;
    return profile::readCeilings(path);
  }
  absl::StatusOr<std::string> path = profile::defaultCeilingsPath();
  if (!path.ok())
    return path.status();
  source = *path;
  bool measured = false;
  absl::StatusOr<profile::Ceilings> ceilings =
      profile::cachedCeilings(*path, remeasure, measured);
  if (ceilings.ok() && measured)
    std::cerr << "measured this machine's ceilings; cached in " << *path
              << "\n";
  return ceilings;
}

absl::StatusOr<ProfileRun> profileFromFlags() {
  ProfileRun run;
  profile::TraceOptions trace;
  auto [rank, ranks] = profile::launcherRank();
  trace.rank = rank;
  std::string tracePath =
      profile::rankTracePath(absl::GetFlag(FLAGS_trace), rank, ranks);
  std::string jsonPath = absl::GetFlag(FLAGS_profile_json);
  bool summary = absl::GetFlag(FLAGS_profile) || !jsonPath.empty();
  trace.enabled = !tracePath.empty();
  if (std::string steps = absl::GetFlag(FLAGS_trace_steps); !steps.empty()) {
    if (!trace.enabled)
      return absl::InvalidArgumentError("--trace-steps needs --trace FILE");
    if (absl::Status status = profile::parseStepWindow(steps, trace);
        !status.ok())
      return status;
  }
  for (const std::string &path : {tracePath, jsonPath})
    if (!path.empty())
      if (absl::Status status = checkWritableFile(path); !status.ok())
        return status;
  if (summary) {
    absl::StatusOr<profile::Ceilings> ceilings =
        ceilingsFromFlags(run.ceilingsSource, /*remeasure=*/false);
    if (!ceilings.ok())
      return ceilings.status();
    run.ceilings = *ceilings;
  }
  if (trace.enabled || summary)
    run.profiler = std::make_unique<profile::Profiler>(trace);
  return run;
}

absl::Status finishProfile(const ProfileRun &run) {
  if (!run.profiler)
    return absl::OkStatus();
  auto [rank, ranks] = profile::launcherRank();
  if (std::string path =
          profile::rankTracePath(absl::GetFlag(FLAGS_trace), rank, ranks);
      !path.empty()) {
    if (absl::Status status = run.profiler->writeTrace(path); !status.ok())
      return status;
    std::cout << "trace: " << path << "\n";
  }
  std::string jsonPath = absl::GetFlag(FLAGS_profile_json);
  if (!absl::GetFlag(FLAGS_profile) && jsonPath.empty())
    return absl::OkStatus();
  nlohmann::json summary =
      profile::summarize(*run.profiler, run.ceilings, run.ceilingsSource);
  if (absl::GetFlag(FLAGS_profile))
    std::cout << profile::formatSummary(summary);
  if (!jsonPath.empty()) {
    if (absl::Status status =
            writeFileAtomically(jsonPath, summary.dump(1) + "\n");
        !status.ok())
      return status;
    std::cout << "profile: " << jsonPath << "\n";
  }
  return absl::OkStatus();
}

} // namespace moert
