//===- Profiler.cpp - kernel times and the Chrome trace of a run ----------===//

#include "runtime/profile/Profiler.h"

#include "runtime/base/WriteFile.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include <cmath>
#include <cstdlib>

namespace moert::profile {

absl::Status parseStepWindow(const std::string &text, TraceOptions &options) {
  size_t colon = text.find(':');
  auto bound = [&](std::string_view part, int64_t &out) {
    return part.empty() || (absl::SimpleAtoi(absl::string_view(part.data(), part.size()), &out) && out >= 1);
  };
  if (colon == std::string::npos ||
      !bound(std::string_view(text).substr(0, colon), options.firstStep) ||
      !bound(std::string_view(text).substr(colon + 1), options.lastStep) ||
      options.firstStep > options.lastStep)
    return absl::InvalidArgumentError(absl::StrCat(
        "--trace-steps: expected A:B with steps 1 <= A <= B (either may be "
        "left out), got '",
        text, "'"));
  return absl::OkStatus();
}

std::pair<int, int> launcherRank() {
  const char *pairs[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                            {"PMI_RANK", "PMI_SIZE"},
                            {"PMIX_RANK", "PMIX_SIZE"}};
  for (auto [rankName, sizeName] : pairs) {
    const char *rank = std::getenv(rankName), *size = std::getenv(sizeName);
    int r = 0, n = 0;
    if (rank && size && absl::SimpleAtoi(rank, &r) &&
        absl::SimpleAtoi(size, &n) && r >= 0 && r < n)
      return {r, n};
  }
  return {0, 1};
}

std::string rankTracePath(const std::string &path, int rank, int size) {
  if (size <= 1 || path.empty())
    return path;
  std::string stem = path;
  if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".json") == 0)
    stem.resize(stem.size() - 5);
  return absl::StrCat(stem, ".rank", rank, ".json");
}

Profiler::Profiler(TraceOptions trace)
    : trace_(trace), origin_(Clock::now()) {}

int Profiler::addProgram(const fb::Model &model, const fb::Program &program,
                         std::string name) {
  ProgramProfile profile;
  profile.name = std::move(name);
  profile.sites = describeProgram(model, program);
  profile.millis.resize(profile.sites.size());
  programs_.push_back(std::move(profile));
  return int(programs_.size()) - 1;
}

void Profiler::beginStep(int64_t step) {
  step_ = step;
  tracing_ = trace_.enabled && step >= trace_.firstStep &&
             step <= trace_.lastStep;
}

double Profiler::micros(Clock::time_point t) const {
  return std::chrono::duration<double, std::micro>(t - origin_).count();
}

void Profiler::kernel(int program, size_t index, Clock::time_point start,
                      Clock::time_point end) {
  programs_[size_t(program)].millis[index].push_back(
      std::chrono::duration<double, std::milli>(end - start).count());
  if (tracing_)
    events_.push_back({program, index, "kernel", start, end, step_});
}

void Profiler::phase(const std::string &name, const char *category,
                     Clock::time_point start, Clock::time_point end) {
  double millis = std::chrono::duration<double, std::milli>(end - start).count();
  if (std::string_view(category) == "step")
    stepMillis_.push_back(millis);
  else
    phaseMillis_[name] += millis;
  if (!tracing_)
    return;
  phases_.push_back(name);
  events_.push_back({-1, phases_.size() - 1, category, start, end, step_});
}

nlohmann::json Profiler::eventJson(const Event &e) const {
  nlohmann::json args = {{"step", e.step}};
  std::string name;
  if (e.program < 0) {
    name = phases_[e.index];
  } else {
    const ProgramProfile &profile = programs_[size_t(e.program)];
    const KernelSite &site = profile.sites[e.index];
    name = site.name;
    args.update({{"kernel", site.kernel},
                 {"op", site.op},
                 {"operands", site.operands},
                 {"results", site.results},
                 {"flops", site.cost.flops},
                 {"bytes", site.cost.bytes},
                 {"products", site.cost.products},
                 {"location", site.location},
                 {"index", e.index},
                 {"program", profile.name}});
  }
  // Whole nanoseconds: enough to order nested events, and a short file.
  auto round = [](double us) { return std::round(us * 1000) / 1000; };
  return {{"name", std::move(name)},
          {"cat", e.category},
          {"ph", "X"},
          {"ts", round(micros(e.start))},
          {"dur", round(micros(e.end) - micros(e.start))},
          {"pid", trace_.rank},
          {"tid", 0},
          {"args", std::move(args)}};
}

nlohmann::json Profiler::trace() const {
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", trace_.rank},
                    {"args", {{"name", absl::StrCat("moe-run rank ", trace_.rank)}}}});
  events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", trace_.rank},
                    {"tid", 0}, {"args", {{"name", "kernels (all threads)"}}}});
  for (const Event &e : events_)
    events.push_back(eventJson(e));
  return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

absl::Status Profiler::writeTrace(const std::string &path) const {
  return writeFileAtomically(path, trace().dump() + "\n");
}

} // namespace moert::profile
