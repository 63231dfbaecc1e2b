//===- RunLaunch.h - enqueue one kernel, profiled on request ----*- C++ -*-===//

#ifndef MOERT_EXEC_RUNLAUNCH_H
#define MOERT_EXEC_RUNLAUNCH_H

#include "runtime/exec/Backend.h"
#include "runtime/profile/Profiler.h"

#include "absl/strings/str_cat.h"

namespace moert {

/// Enqueues `launch`; a failure names the op and source location it came
/// from. With a profiler, waits for the kernel and reports its time as
/// kernel `index` of the profiler's program `program`.
inline absl::Status runLaunch(Backend &backend, Stream &stream,
                              const KernelLaunch &launch,
                              profile::Profiler *profiler, int program,
                              size_t index) {
  // The clock is read only when profiling: launches are the hot path.
  auto start = profiler ? profile::Clock::now() : profile::Clock::time_point();
  absl::Status status = backend.launch(launch, stream);
  if (status.ok() && profiler) {
    status = stream.synchronize();
    if (status.ok())
      profiler->kernel(program, index, start, profile::Clock::now());
  }
  if (status.ok())
    return status;
  return absl::Status(status.code(), absl::StrCat(launch.kernel->location()->str(),
                                                  ": ", status.message()));
}

} // namespace moert

#endif // MOERT_EXEC_RUNLAUNCH_H
