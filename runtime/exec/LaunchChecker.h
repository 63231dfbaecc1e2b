//===- LaunchChecker.h - the rule checker of LaunchChecks -------*- C++ -*-===//
//
// Shared by the checks of the forward and initialisation ops
// (LaunchChecks.cpp) and of the training ops (GradLaunchChecks.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXEC_LAUNCHCHECKER_H
#define MOERT_EXEC_LAUNCHCHECKER_H

#include "runtime/exec/Backend.h"
#include "runtime/exec/FusedBlockOperands.h"

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
  /// A norm weight [G] whose size G divides the input width.
  void normGroup(const TensorRef &weight, int64_t width) {
    rule(weight.shape.size() == 1 && weight.shape[0] > 0 &&
             width % weight.shape[0] == 0,
         absl::StrCat("weight has shape ", str(weight.shape),
                      ", expected [G] with G dividing ", width));
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
  int64_t intAttr(size_t i) { return intAttrOr(i, 0); }
  int64_t intAttrOr(size_t i, int64_t otherwise) {
    auto *attrs = launch.kernel->int_attrs();
    return attrs && i < attrs->size() ? attrs->Get(i) : otherwise;
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

// Operand rules shared by a forward op and its backward op, which reads the
// same operands again. Each returns whether every rule held.

/// Attention's query, key and value (operands 0-2) against its head counts.
inline bool checkAttentionInputs(Checker &c) {
  c.ints(3);
  c.floats(1);
  if (!c.ok())
    return false;
  const TensorRef &q = c.operand(0), &k = c.operand(1);
  c.rank(q, "query", 3, 3);
  c.rank(k, "key", 3, 3);
  int64_t heads = c.intAttr(0), kvHeads = c.intAttr(1);
  c.rule(c.ok() && heads > 0 && kvHeads > 0 && heads % kvHeads == 0 &&
             q.shape[2] % heads == 0,
         "bad head counts");
  if (!c.ok())
    return false;
  c.shape(k, "key", {q.shape[0], q.shape[1], kvHeads * (q.shape[2] / heads)});
  c.shape(c.operand(2), "value", k.shape);
  return c.ok();
}

/// The expert MLPs' grouped input, counts and stacked gate, up and down
/// weights (operands 0-4).
inline bool checkExpertInputs(Checker &c) {
  const TensorRef &x = c.operand(0), &gate = c.operand(2);
  c.rank(x, "input", 2, 2);
  c.rank(gate, "gate", 3, 3);
  c.dtype(gate, "gate", isWeight(gate.dtype));
  if (!c.ok())
    return false;
  int64_t experts = gate.shape[0], width = gate.shape[1];
  c.rule(gate.shape[2] == x.shape[1], "gate and input widths differ");
  c.shape(c.operand(1), "counts", {experts});
  c.dtype(c.operand(1), "counts", c.operand(1).dtype == DType::kI64);
  c.shape(c.operand(3), "up", gate.shape);
  c.shape(c.operand(4), "down", {experts, x.shape[1], width});
  c.rule(c.operand(3).dtype == gate.dtype && c.operand(4).dtype == gate.dtype,
         "expert weights differ in dtype");
  return c.ok();
}

/// A fused MoE block's input [tokens..., D], router [E, D], gate and up
/// [E, F, D] and down [E, D, F] (operands 0-4) and its [top_k, normalize].
inline bool checkFusedExpertsInputs(Checker &c) {
  c.ints(2);
  if (!c.ok())
    return false;
  const TensorRef &x = c.operand(0), &router = c.operand(1),
                  &gate = c.operand(2);
  c.rank(x, "input", 1);
  c.rank(router, "router", 2, 2);
  c.rank(gate, "gate", 3, 3);
  c.dtype(gate, "gate", isWeight(gate.dtype));
  c.dtype(router, "router", isWeight(router.dtype));
  if (!c.ok())
    return false;
  // Split over an expert group (int attribute 2), the expert weights hold
  // this rank's share of the router's experts.
  int64_t experts = router.shape[0], d = x.shape.back();
  int64_t split = c.intAttrOr(2, 1);
  c.rule(split >= 1 && experts % split == 0,
         "the expert-parallel degree does not divide the experts");
  if (!c.ok())
    return false;
  int64_t local = experts / split;
  c.rule(router.shape[1] == d, "router and input widths differ");
  c.shape(gate, "gate", {local, gate.shape[1], d});
  c.shape(c.operand(3), "up", gate.shape);
  c.shape(c.operand(4), "down", {local, d, gate.shape[1]});
  c.rule(c.operand(3).dtype == gate.dtype && c.operand(4).dtype == gate.dtype,
         "expert weights differ in dtype");
  c.rule(c.intAttr(0) >= 1 && c.intAttr(0) <= experts,
         "top_k outside [1, experts]");
  return c.ok();
}

/// A fused block's labels and kept hidden states, when it has them: int32
/// labels, one per input token; fp32 [tokens * top_k, F] hidden states.
inline void checkFusedBlockExtras(Checker &c, const FusedBlockOperands &at) {
  const TensorRef &x = c.operand(0);
  if (at.labels >= 0) {
    const TensorRef &labels = c.operand(at.labels);
    c.rule(x.shape.size() >= 2, "labels of an input without a sequence axis");
    c.dtype(labels, "labels", labels.dtype == DType::kI32);
    c.shape(labels, "labels", leading(x));
  }
  if (at.saved >= 0) {
    c.rule(c.intAttrOr(2, 1) == 1,
           "kept hidden states on experts split over ranks");
    int64_t tokens = product(leading(x));
    for (int i = 0; i < 2; ++i) {
      const TensorRef &kept = c.operand(at.saved + i);
      c.dtype(kept, "hidden state", kept.dtype == DType::kF32);
      c.shape(kept, "hidden state",
              {tokens * c.intAttr(0), c.operand(2).shape[1]});
    }
  }
}

/// Combine's expert outputs [rows, D], weights [tokens..., K] and source
/// slots (operands 0-2).
inline bool checkCombineInputs(Checker &c) {
  const TensorRef &y = c.operand(0), &w = c.operand(1);
  c.rank(y, "input", 2, 2);
  c.rank(w, "weights", 1);
  if (!c.ok())
    return false;
  c.rule(product(w.shape) == y.shape[0], "input rows != tokens x top_k");
  c.shape(c.operand(2), "source_slots", {y.shape[0]});
  c.dtype(c.operand(2), "source_slots", c.operand(2).dtype == DType::kI32);
  return c.ok();
}

/// Cross-entropy's logits and labels (operands 0-1).
inline bool checkCrossEntropyInputs(Checker &c) {
  c.ints(1);
  if (!c.ok())
    return false;
  c.rank(c.operand(0), "logits", 1);
  c.dtype(c.operand(1), "labels", c.operand(1).dtype == DType::kI32);
  if (c.ok())
    c.shape(c.operand(1), "labels", leading(c.operand(0)));
  return c.ok();
}

/// The router losses' operands: labels (operand 0, one i32 per token) and
/// `layers` router logits after them, all with one row per label and the
/// same expert count.
inline bool checkRouterLossInputs(Checker &c, const KernelLaunch &launch,
                                  size_t layers) {
  c.rule(layers >= 1 && launch.operands.size() > layers,
         "expects labels and router logits");
  if (!c.ok())
    return false;
  const TensorRef &labels = c.operand(0);
  c.dtype(labels, "labels", labels.dtype == DType::kI32);
  for (size_t i = 1; i <= layers && c.ok(); ++i) {
    c.rank(c.operand(i), "router logits", 1);
    if (!c.ok())
      break;
    c.rule(c.operand(i).shape.back() == c.operand(1).shape.back(),
           "router logits differ in experts");
    c.rule(product(leading(c.operand(i))) == labels.numElements(),
           "router logits rows differ from the label count");
  }
  return c.ok();
}

} // namespace moert::launch_checks

#endif // MOERT_EXEC_LAUNCHCHECKER_H
