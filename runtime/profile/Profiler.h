//===- Profiler.h - kernel times and the Chrome trace of a run --*- C++ -*-===//
//
// The executor and the trainer report each kernel launch here (after its
// stream is synchronised, so the time is the kernel's own), and the phases
// that enclose them (steps, backward, optimiser, saves, data loading). It
// keeps every kernel's times for the summary (ProfileSummary.h) and, when
// tracing, one Chrome Trace Event per launch and phase of the traced steps,
// which Perfetto and chrome://tracing open. Nothing calls it when profiling
// is off: a null profiler costs one branch per launch.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_PROFILE_PROFILER_H
#define MOERT_PROFILE_PROFILER_H

#include "runtime/profile/KernelSite.h"

#include "absl/status/status.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace moert::profile {

using Clock = std::chrono::steady_clock;

struct TraceOptions {
  bool enabled = false;
  /// The steps traced, inclusive, counted from 1 as the run prints them.
  int64_t firstStep = 1;
  int64_t lastStep = std::numeric_limits<int64_t>::max();
  /// The process's rank under mpirun: the trace's process id.
  int rank = 0;
};

/// This process's rank and the number of ranks when mpirun (Open MPI,
/// MPICH/Hydra or PMIx) started it; {0, 1} otherwise.
std::pair<int, int> launcherRank();

/// `path` for rank `rank` of `size`: itself for one process, else
/// "trace.json" -> "trace.rank{r}.json", one file per rank to merge.
std::string rankTracePath(const std::string &path, int rank, int size);

/// Parses --trace-steps "A:B" (either side may be empty: "5:", ":10").
absl::Status parseStepWindow(const std::string &text, TraceOptions &options);

struct ProgramProfile {
  std::string name; // "forward", "training step"
  std::vector<KernelSite> sites;
  /// Per site, the duration of each launch in milliseconds.
  std::vector<std::vector<double>> millis;
};

class Profiler {
public:
  explicit Profiler(TraceOptions trace = {});

  /// Registers a program's kernels; the id names it in kernel().
  int addProgram(const fb::Model &model, const fb::Program &program,
                 std::string name);
  /// Starts step `step` (traced when inside the window).
  void beginStep(int64_t step);
  void kernel(int program, size_t index, Clock::time_point start,
              Clock::time_point end);
  /// An enclosing phase. Steps (category "step") also count in the summary.
  void phase(const std::string &name, const char *category,
             Clock::time_point start, Clock::time_point end);

  /// Times a phase from construction to destruction; does nothing for a
  /// null profiler.
  class Scope {
  public:
    Scope(Profiler *profiler, std::string name, const char *category)
        : profiler_(profiler), name_(std::move(name)), category_(category),
          start_(Clock::now()) {}
    ~Scope() {
      if (profiler_)
        profiler_->phase(name_, category_, start_, Clock::now());
    }
    Scope(const Scope &) = delete;
    Scope &operator=(const Scope &) = delete;

  private:
    Profiler *profiler_;
    std::string name_;
    const char *category_;
    Clock::time_point start_;
  };

  const std::vector<ProgramProfile> &programs() const { return programs_; }
  /// Milliseconds of each step run.
  const std::vector<double> &stepMillis() const { return stepMillis_; }
  /// Total milliseconds of each phase other than steps, by name.
  const std::map<std::string, double> &phaseMillis() const { return phaseMillis_; }
  /// The Chrome Trace Event document of the traced steps.
  nlohmann::json trace() const;
  /// Writes trace() to `path` atomically.
  absl::Status writeTrace(const std::string &path) const;

private:
  /// A traced event, kept compact while the run goes (a kernel's names and
  /// shapes are its site's, looked up when the trace is written).
  struct Event {
    int program = -1; // a kernel's program, or -1 for a phase
    size_t index = 0; // the kernel's site, or the phase's name in phases_
    const char *category;
    Clock::time_point start, end;
    int64_t step;
  };
  double micros(Clock::time_point t) const;
  nlohmann::json eventJson(const Event &event) const;

  TraceOptions trace_;
  Clock::time_point origin_;
  bool tracing_ = false;
  int64_t step_ = 0;
  std::vector<ProgramProfile> programs_;
  std::vector<double> stepMillis_;
  std::map<std::string, double> phaseMillis_;
  std::vector<Event> events_;
  std::vector<std::string> phases_;
};

} // namespace moert::profile

#endif // MOERT_PROFILE_PROFILER_H
