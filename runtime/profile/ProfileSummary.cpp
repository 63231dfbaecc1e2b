//===- ProfileSummary.cpp - where a run's time went, and how well ---------===//

#include "runtime/profile/ProfileSummary.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace moert::profile {
namespace {

struct Group {
  int64_t calls = 0;
  double millis = 0, flops = 0, bytes = 0, bf16Flops = 0;
  std::vector<double> times;

  void add(const KernelSite &site, const std::vector<double> &launches) {
    double n = double(launches.size());
    calls += int64_t(launches.size());
    millis += std::accumulate(launches.begin(), launches.end(), 0.0);
    flops += site.cost.flops * n;
    bytes += site.cost.bytes * n;
    if (site.computeType == DType::kBF16)
      bf16Flops += site.cost.flops * n;
    times.insert(times.end(), launches.begin(), launches.end());
  }
  DType computeType() const {
    return flops > 0 && 2 * bf16Flops >= flops ? DType::kBF16 : DType::kF32;
  }
};

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  size_t m = values.size() / 2;
  return values.size() % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
}

/// One row: achieved rates, and the percentage of the ceiling that bounds
/// a kernel of this arithmetic intensity.
nlohmann::json row(const std::string &name, const Group &group,
                   const Ceilings &ceilings, double stepMillis) {
  double seconds = std::max(group.millis, 1e-9) / 1e3;
  double gflops = group.flops / seconds / 1e9;
  double gbs = group.bytes / seconds / 1e9;
  double intensity = group.bytes > 0 ? group.flops / group.bytes : 0;
  DType type = group.computeType();
  double gemm = ceilings.gemmGflops(type);
  bool compute = intensity >= gemm / ceilings.bandwidthGbs;
  return {{"name", name},
          {"calls", group.calls},
          {"total_ms", group.millis},
          {"median_us", median(group.times) * 1e3},
          {"step_percent", 100 * group.millis / std::max(stepMillis, 1e-9)},
          {"flops", group.flops},
          {"bytes", group.bytes},
          {"gflops", gflops},
          {"gb_per_s", gbs},
          {"intensity", intensity},
          {"dtype", absl::AsciiStrToLower(dtypeName(type))},
          {"bound", compute ? "compute" : "memory"},
          {"ceiling", compute ? gemm : ceilings.bandwidthGbs},
          {"percent_of_ceiling",
           100 * (compute ? gflops / gemm : gbs / ceilings.bandwidthGbs)}};
}

nlohmann::json rows(const std::map<std::string, Group> &groups,
                    const Ceilings &ceilings, double stepMillis) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto &[name, group] : groups)
    out.push_back(row(name, group, ceilings, stepMillis));
  std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
    return a["total_ms"].template get<double>() >
           b["total_ms"].template get<double>();
  });
  return out;
}

} // namespace

nlohmann::json summarize(const Profiler &profiler, const Ceilings &ceilings,
                         const std::string &ceilingsSource) {
  std::map<std::string, Group> byOp, byLayer, byKernel;
  Group all;
  double forwardProductFlops = 0, forwardBf16Flops = 0;
  bool training = false;
  for (const ProgramProfile &program : profiler.programs())
    for (size_t i = 0; i < program.sites.size(); ++i) {
      const KernelSite &site = program.sites[i];
      const std::vector<double> &launches = program.millis[i];
      if (launches.empty())
        continue;
      byOp[site.op].add(site, launches);
      byLayer[site.layer].add(site, launches);
      byKernel[site.name].add(site, launches);
      all.add(site, launches);
      training |= absl::StrContains(site.op, "_grad");
      if (site.cost.products && !absl::StrContains(site.op, "_grad")) {
        forwardProductFlops += site.cost.flops * double(launches.size());
        if (site.computeType == DType::kBF16)
          forwardBf16Flops += site.cost.flops * double(launches.size());
      }
    }

  const std::vector<double> &steps = profiler.stepMillis();
  double stepMillis = steps.empty()
                          ? all.millis
                          : std::accumulate(steps.begin(), steps.end(), 0.0);
  size_t stepCount = std::max<size_t>(steps.size(), 1);
  // Useful work: the model's products, 3x the forward's when training (the
  // backward's two products per forward product), as MFU counts them; what
  // the kernels recompute is not useful.
  double useful = forwardProductFlops * (training ? 3 : 1);
  DType type = 2 * forwardBf16Flops >= forwardProductFlops && forwardBf16Flops > 0
                   ? DType::kBF16
                   : DType::kF32;
  double rate = useful / (std::max(stepMillis, 1e-9) / 1e3) / 1e9;
  nlohmann::json kernels = rows(byKernel, ceilings, stepMillis);
  nlohmann::json phases = nlohmann::json::array();
  for (const auto &[name, millis] : profiler.phaseMillis())
    phases.push_back({{"name", name},
                      {"total_ms", millis},
                      {"step_percent", 100 * millis / std::max(stepMillis, 1e-9)}});
  std::sort(phases.begin(), phases.end(), [](const auto &a, const auto &b) {
    return a["total_ms"].template get<double>() >
           b["total_ms"].template get<double>();
  });
  return {
      {"steps", steps.size()},
      {"step_ms_median", median(steps)},
      {"kernel_ms", all.millis},
      {"ceilings",
       {{"gemm_gflops_f32", ceilings.gemmGflopsF32},
        {"gemm_gflops_bf16", ceilings.gemmGflopsBf16},
        {"bandwidth_gb_per_s", ceilings.bandwidthGbs},
        {"threads", ceilings.threads},
        {"source", ceilingsSource}}},
      {"by_op", rows(byOp, ceilings, stepMillis)},
      {"by_layer", rows(byLayer, ceilings, stepMillis)},
      {"by_kernel", kernels},
      {"phases", phases},
      {"step",
       {{"useful_flops_per_step", useful / double(stepCount)},
        {"useful_gflops", rate},
        {"dtype", absl::AsciiStrToLower(dtypeName(type))},
        {"percent_of_gemm_ceiling", 100 * rate / ceilings.gemmGflops(type)},
        {"training", training}}}};
}

std::string formatSummary(const nlohmann::json &summary) {
  const nlohmann::json &c = summary["ceilings"];
  std::string out = absl::StrFormat(
      "profile: %d steps, median step %.3f ms; ceilings (%d threads, %s): "
      "f32 GEMM %.1f GFLOP/s, bf16 GEMM %.1f GFLOP/s, triad %.1f GB/s\n",
      summary["steps"].get<int64_t>(), summary["step_ms_median"].get<double>(),
      c["threads"].get<int>(), c["source"].get<std::string>(),
      c["gemm_gflops_f32"].get<double>(), c["gemm_gflops_bf16"].get<double>(),
      c["bandwidth_gb_per_s"].get<double>());
  auto table = [&](const char *title, const nlohmann::json &rows,
                   size_t limit) {
    absl::StrAppendFormat(&out,
                          "%-48s %6s %10s %10s %6s %8s %8s %5s %-7s %6s\n",
                          title, "calls", "total ms", "median us", "step%",
                          "GFLOP/s", "GB/s", "dtype", "bound", "%ceil");
    for (size_t i = 0; i < rows.size() && i < limit; ++i) {
      const nlohmann::json &r = rows[i];
      absl::StrAppendFormat(
          &out, "  %-46s %6d %10.3f %10.1f %6.1f %8.1f %8.1f %5s %-7s %6.1f\n",
          r["name"].get<std::string>(), r["calls"].get<int64_t>(),
          r["total_ms"].get<double>(), r["median_us"].get<double>(),
          r["step_percent"].get<double>(), r["gflops"].get<double>(),
          r["gb_per_s"].get<double>(), r["dtype"].get<std::string>(),
          r["bound"].get<std::string>(),
          r["percent_of_ceiling"].get<double>());
    }
    if (rows.size() > limit)
      absl::StrAppendFormat(&out, "  (%d more in --profile-json)\n",
                            rows.size() - limit);
  };
  table("by op kind", summary["by_op"], 1000);
  table("by layer", summary["by_layer"], 1000);
  table("top kernels", summary["by_kernel"], 10);
  if (!summary["phases"].empty()) {
    out += "phases (ms, % of the steps' time):";
    for (const nlohmann::json &phase : summary["phases"])
      absl::StrAppendFormat(&out, " %s %.1f (%.1f%%)",
                            phase["name"].get<std::string>(),
                            phase["total_ms"].get<double>(),
                            phase["step_percent"].get<double>());
    out += "\n";
  }
  const nlohmann::json &step = summary["step"];
  absl::StrAppendFormat(
      &out,
      "step efficiency: %.3f GFLOP useful per step (%s), %.1f GFLOP/s, "
      "%.1f%% of the %s GEMM ceiling\n",
      step["useful_flops_per_step"].get<double>() / 1e9,
      step["training"].get<bool>() ? "3 x the forward's products"
                                   : "the forward's products",
      step["useful_gflops"].get<double>(), step["percent_of_gemm_ceiling"].get<double>(),
      step["dtype"].get<std::string>());
  return out;
}

} // namespace moert::profile
