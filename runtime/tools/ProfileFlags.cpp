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

absl::StatusOr<std::string> ceilingsPath() {
  if (std::string path = absl::GetFlag(FLAGS_ceilings); !path.empty())
    return path;
  return profile::defaultCeilingsPath();
}

namespace {
/// The ceilings --ceilings names (read only), or the cache's, measured and
/// cached first when it has none for this thread count.
absl::StatusOr<profile::Ceilings> ceilingsForSummary(const std::string &path) {
  if (!absl::GetFlag(FLAGS_ceilings).empty())
    return profile::readCeilings(path);
  bool measured = false;
  absl::StatusOr<profile::Ceilings> ceilings =
      profile::cachedCeilings(path, /*remeasure=*/false, measured);
  if (ceilings.ok() && measured)
    std::cerr << "measured this machine's ceilings; cached in " << path << "\n";
  return ceilings;
}
} // namespace

absl::StatusOr<ProfileRun> profileFromFlags() {
  ProfileRun run;
  profile::TraceOptions trace;
  auto [rank, ranks] = profile::launcherRank();
  trace.rank = rank;
  run.tracePath = profile::rankTracePath(absl::GetFlag(FLAGS_trace), rank, ranks);
  // Every rank writes its own trace; rank 0 alone prints the summary and
  // writes --profile-json.
  run.jsonPath = rank == 0 ? absl::GetFlag(FLAGS_profile_json) : "";
  run.printSummary = rank == 0 && absl::GetFlag(FLAGS_profile);
  bool summary = run.printSummary || !run.jsonPath.empty();
  trace.enabled = !run.tracePath.empty();
  if (std::string steps = absl::GetFlag(FLAGS_trace_steps); !steps.empty()) {
    if (!trace.enabled)
      return absl::InvalidArgumentError("--trace-steps needs --trace FILE");
    if (absl::Status status = profile::parseStepWindow(steps, trace);
        !status.ok())
      return status;
  }
  for (const std::string &path : {run.tracePath, run.jsonPath})
    if (!path.empty())
      if (absl::Status status = checkWritableFile(path); !status.ok())
        return status;
  if (summary) {
    absl::StatusOr<std::string> path = ceilingsPath();
    if (!path.ok())
      return path.status();
    absl::StatusOr<profile::Ceilings> ceilings = ceilingsForSummary(*path);
    if (!ceilings.ok())
      return ceilings.status();
    run.ceilings = *ceilings;
    run.ceilingsSource = *path;
  }
  if (trace.enabled || summary)
    run.profiler = std::make_unique<profile::Profiler>(trace);
  return run;
}

absl::Status finishProfile(const ProfileRun &run) {
  if (!run.profiler)
    return absl::OkStatus();
  if (!run.tracePath.empty()) {
    if (absl::Status status = run.profiler->writeTrace(run.tracePath);
        !status.ok())
      return status;
    std::cout << "trace: " << run.tracePath << "\n";
  }
  if (!run.printSummary && run.jsonPath.empty())
    return absl::OkStatus();
  nlohmann::json summary =
      profile::summarize(*run.profiler, run.ceilings, run.ceilingsSource);
  if (run.printSummary)
    std::cout << profile::formatSummary(summary);
  if (!run.jsonPath.empty()) {
    if (absl::Status status =
            writeFileAtomically(run.jsonPath, summary.dump(1) + "\n");
        !status.ok())
      return status;
    std::cout << "profile: " << run.jsonPath << "\n";
  }
  return absl::OkStatus();
}

} // namespace moert
