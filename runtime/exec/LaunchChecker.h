//===- LaunchChecker.h - the rule checker of LaunchChecks -------*- C++ -*-===//
//
// Shared by the checks of the forward and initialisation ops
// (LaunchChecks.cpp) and of the training ops (GradLaunchChecks.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXEC_LAUNCHCHECKER_H
#define MOERT_EXEC_LAUNCHCHECKER_H

#include "runtime/exec/Backend.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace moert::launch_checks {


using Shape = std::vector<int64_t>;

inline std::string str(const Shape &shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

inline absl::Status bad(const std::string &message) {
  return absl::InvalidArgumentError(message);
}

inline Shape leading(const TensorRef &t) {
  return Shape(t.shape.begin(), t.shape.end() - (t.shape.empty() ? 0 : 1));
}

inline Shape withLast(Shape shape, int64_t last) {
  shape.push_back(last);
  return shape;
}

inline int64_t product(const Shape &shape) {
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  return count;
}

/// Accumulates the first broken rule.
class Checker {
public:
  explicit Checker(const KernelLaunch &launch) : launch(launch) {}

  const TensorRef &operand(size_t i) { return launch.operands[i]; }
  const TensorRef &result(size_t i) { return launch.results[i]; }

  void counts(size_t operands, size_t results) {
    if (launch.operands.size() != operands || launch.results.size() != results)
      fail(absl::StrCat("expects ", operands, " operands and ", results,
                        " results, got ", launch.operands.size(), " and ",
                        launch.results.size()));
  }
  void rank(const TensorRef &t, const char *what, size_t least,
            size_t most = 8) {
    if (t.shape.size() < least || t.shape.size() > most)
      fail(absl::StrCat(what, " has rank ", t.shape.size()));
  }
  void shape(const TensorRef &t, const char *what, const Shape &expected) {
    if (t.shape != expected)
      fail(absl::StrCat(what, " has shape ", str(t.shape), ", expected ",
                        str(expected)));
  }
  void dtype(const TensorRef &t, const char *what, bool ok) {
    if (!ok)
      fail(absl::StrCat(what, " has an unsupported dtype ", dtypeName(t.dtype)));
  }
  void rule(bool ok, const std::string &message) {
    if (!ok)
      fail(message);
  }
  void ints(size_t count) {
    auto *attrs = launch.kernel->int_attrs();
    rule(attrs && attrs->size() >= count,
         absl::StrCat("needs ", count, " integer attributes"));
  }
  void floats(size_t count) {
    auto *attrs = launch.kernel->float_attrs();
    rule(attrs && attrs->size() >= count,
         absl::StrCat("needs ", count, " float attributes"));
  }
  int64_t intAttr(size_t i) {
    auto *attrs = launch.kernel->int_attrs();
    return attrs && i < attrs->size() ? attrs->Get(i) : 0;
  }

  bool ok() const { return status.ok(); }
  absl::Status done() { return status; }

private:
  void fail(const std::string &message) {
    if (status.ok())
      status = bad(message);
  }
  const KernelLaunch &launch;
  absl::Status status;
};

inline bool isWeight(DType t) {
  return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16;
}
inline bool isInt(DType t) { return t == DType::kI32 || t == DType::kI64; }

} // namespace moert::launch_checks

#endif // MOERT_EXEC_LAUNCHCHECKER_H
