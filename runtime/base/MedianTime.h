//===- MedianTime.h - the median time of a repeated body --------*- C++ -*-===//

#ifndef MOERT_BASE_MEDIANTIME_H
#define MOERT_BASE_MEDIANTIME_H

#include <algorithm>
#include <chrono>
#include <vector>

namespace moert {

/// Runs `body` once to warm up (primitive creation, page faults), then
/// `repeat` times; returns the median in milliseconds.
template <typename Body> double medianMillis(int repeat, Body &&body) {
  body();
  std::vector<double> times;
  for (int r = 0; r < repeat; ++r) {
    auto start = std::chrono::steady_clock::now();
    body();
    times.push_back(std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count());
  }
  std::sort(times.begin(), times.end());
  size_t m = times.size() / 2;
  return times.size() % 2 ? times[m] : (times[m - 1] + times[m]) / 2;
}

} // namespace moert

#endif // MOERT_BASE_MEDIANTIME_H
