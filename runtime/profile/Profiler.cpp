//===- Profiler.cpp - kernel times and the Chrome trace of a run ----------===//

#include "runtime/profile/Profiler.h"

#include "runtime/base/WriteFile.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include <cmath>

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

void Profiler::event(const std::string &name, const char *category,
                     Clock::time_point start, Clock::time_point end,
                     nlohmann::json args) {
  args["step"] = step_;
  // Whole nanoseconds: enough to order nested events, and a short file.
  auto round = [](double us) { return std::round(us * 1000) / 1000; };
  events_.push_back({{"name", name},
                     {"cat", category},
                     {"ph", "X"},
                     {"ts", round(micros(start))},
                     {"dur", round(micros(end) - micros(start))},
                     {"pid", 0},
                     {"tid", 0},
                     {"args", std::move(args)}});
}

void Profiler::kernel(int program, size_t index, Clock::time_point start,
                      Clock::time_point end) {
  ProgramProfile &profile = programs_[size_t(program)];
  profile.millis[index].push_back(
      std::chrono::duration<double, std::milli>(end - start).count());
  if (!tracing_)
    return;
  const KernelSite &site = profile.sites[index];
  event(site.name, "kernel", start, end,
        {{"kernel", site.kernel},
         {"op", site.op},
         {"operands", site.operands},
         {"results", site.results},
         {"flops", site.cost.flops},
         {"bytes", site.cost.bytes},
         {"products", site.cost.products},
         {"location", site.location},
         {"index", index},
         {"program", profile.name}});
}

void Profiler::phase(const std::string &name, const char *category,
                     Clock::time_point start, Clock::time_point end) {
  if (std::string_view(category) == "step")
    stepMillis_.push_back(
        std::chrono::duration<double, std::milli>(end - start).count());
  if (tracing_)
    event(name, category, start, end, nlohmann::json::object());
}

nlohmann::json Profiler::trace() const {
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 0},
                    {"args", {{"name", "moe-run"}}}});
  events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 0},
                    {"tid", 0}, {"args", {{"name", "kernels (all threads)"}}}});
  for (const nlohmann::json &e : events_)
    events.push_back(e);
  return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

absl::Status Profiler::writeTrace(const std::string &path) const {
  return writeFileAtomically(path, trace().dump() + "\n");
}

} // namespace moert::profile
