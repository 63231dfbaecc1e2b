//===- CompileReport.cpp - what moec compile --report prints --------------===//
//
// Memory is the buffer plan's: each program's arena at its high-water mark,
// split by the kind of the values live there. A training step's forward part
// ends at its last loss (moe-autodiff builds the losses, then the backward
// pass after them), so a value defined there or before and read after it is
// an activation kept for backward; all of those are live as the backward
// pass begins.
//
//===----------------------------------------------------------------------===//

#include "compiler/moec/CompileReport.h"

#include "dialects/moe/MoeOps.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <map>

using namespace mlir;
using namespace mlir::moe;

int64_t moe::modelLayers(ModuleOp module) {
  if (auto config = module->getAttrOfType<DictionaryAttr>("moe.hf_config"))
    if (auto count = config.getAs<IntegerAttr>("num_hidden_layers"))
      return std::max<int64_t>(1, count.getInt());
  return 1;
}

namespace {
enum Kind { Kept, Gradient, Output, Workspace, kNumKinds };
constexpr const char *kKindNames[kNumKinds] = {"kept for backward", "gradients",
                                               "outputs", "workspace"};

/// The kind of each value of a program, as the file comment defines them.
class ValueKinds {
public:
  explicit ValueKinds(func::FuncOp function) {
    Block &body = function.getBody().front();
    for (auto [index, result] :
         llvm::enumerate(body.getTerminator()->getOperands()))
      returned[result] =
          function.getResultAttr(index, "moe.gradient") ? Gradient : Output;
    for (Operation &op : body)
      if (isa<CrossEntropyOp, LoadBalancingLossOp, RouterZLossOp>(op))
        lastLoss = &op;
  }

  Kind of(Value value) const {
    if (auto it = returned.find(value); it != returned.end())
      return it->second;
    Operation *def = value.getDefiningOp();
    bool readAfter =
        lastLoss && llvm::any_of(value.getUsers(), [&](auto *user) {
          return lastLoss->isBeforeInBlock(user);
        });
    return readAfter && !lastLoss->isBeforeInBlock(def) ? Kept : Workspace;
  }

private:
  llvm::DenseMap<Value, Kind> returned;
  Operation *lastLoss = nullptr;
};

/// "   1019136 B     1.02 MB  NOTE": exact, in decimal units as the docs
/// quote memory, and why.
void line(llvm::raw_ostream &os, StringRef label, int64_t bytes,
          StringRef note = "") {
  static constexpr const char *units[] = {"B", "KB", "MB", "GB", "TB"};
  double scaled = bytes;
  int unit = 0;
  for (; scaled >= 1000 && unit < 4; ++unit)
    scaled /= 1000;
  std::string human =
      unit ? llvm::formatv("{0:F2} {1}", scaled, units[unit]).str() : "";
  std::string text =
      llvm::formatv("{0,-24}{1,14} B  {2,10}  {3}", label, bytes, human, note);
  os << StringRef(text).rtrim() << "\n";
}

/// "moe.fused_experts_grad (model.layers.1.block_sparse_moe)".
std::string describe(Operation *op) {
  std::string text = op->getName().getStringRef().str();
  if (auto name = op->getLoc()->findInstanceOf<NameLoc>())
    text += " (" + name.getName().str() + ")";
  return text;
}

/// N of an op located at "model.layers.N...", else -1.
int64_t layerOf(Operation *op) {
  auto name = op->getLoc()->findInstanceOf<NameLoc>();
  if (!name)
    return -1;
  StringRef text = name.getName().getValue();
  size_t at = text.find("layers.");
  unsigned long long layer;
  if (at == StringRef::npos ||
      text.drop_front(at + strlen("layers.")).consumeInteger(10, layer))
    return -1;
  return layer;
}

void printPasses(llvm::ArrayRef<PassTime> passes, llvm::raw_ostream &os) {
  os << "passes:\n";
  double total = 0;
  for (const PassTime &pass : passes) {
    os << "  " << llvm::left_justify(pass.name, 28)
       << llvm::format("%10.2f ms\n", pass.ms);
    total += pass.ms;
  }
  os << "  " << llvm::left_justify("total", 28)
     << llvm::format("%10.2f ms\n", total);
}

void printKernels(const ArtifactSummary &summary, llvm::raw_ostream &os) {
  os << "kernels:\n";
  for (const ProgramSummary &program : summary.programs) {
    int64_t count = 0;
    for (auto &kernel : program.kernels)
      count += kernel.second;
    os << "  " << func::FuncOp(program.function).getName() << ": " << count
       << " kernels\n";
    for (auto &[name, uses] : program.kernels)
      os << "    " << llvm::left_justify(name, 36) << " x " << uses << "\n";
  }
}

/// Each arena at its peak: the live values by kind (every kind the program
/// has, even where none is live then), and the holes between them.
void printMemory(const ArtifactSummary &summary, llvm::raw_ostream &os) {
  os << "memory:\n";
  line(os, "  parameters", summary.paramBytes,
       "outside the arenas, in their dtypes");
  for (const ProgramSummary &program : summary.programs) {
    const BufferPlan &plan = program.plan;
    func::FuncOp function = program.function;
    line(os, ("  " + function.getName() + " arena").str(), plan.arenaBytes,
         plan.peakOp ? "peak at " + describe(plan.peakOp) : "");
    ValueKinds kinds(function);
    bool has[kNumKinds] = {};
    for (auto &planned : plan.slots)
      has[kinds.of(planned.first)] = true;
    int64_t live[kNumKinds] = {};
    for (Value value : plan.liveAtPeak)
      live[kinds.of(value)] += arenaBytesOf(plan.slots.lookup(value).bytes);
    int64_t used = 0;
    for (int kind = 0; kind < kNumKinds; ++kind) {
      used += live[kind];
      if (has[kind])
        line(os, std::string("    ") + kKindNames[kind], live[kind]);
    }
    line(os, "    free", plan.arenaBytes - used, "holes between live values");
  }
}

/// What the training step keeps for backward, in all and by layer.
void printTraining(func::FuncOp train, const BufferPlan &plan,
                   llvm::raw_ostream &os) {
  int64_t tokens = llvm::cast<RankedTensorType>(train.getArgument(0).getType())
                       .getNumElements();
  int64_t layers = modelLayers(train->getParentOfType<ModuleOp>());
  ValueKinds kinds(train);
  std::map<int64_t, int64_t> keptByLayer;
  int64_t kept = 0, keptOutside = 0, gradients = 0;
  for (Operation &op : train.getBody().front()) {
    for (Value result : op.getResults()) {
      if (!plan.slots.count(result))
        continue;
      int64_t size = arenaBytesOf(plan.slots.lookup(result).bytes);
      Kind kind = kinds.of(result);
      if (kind == Kept) {
        kept += size;
        int64_t layer = layerOf(&op);
        (layer < 0 ? keptOutside : keptByLayer[layer]) += size;
      } else if (kind == Gradient) {
        gradients += size;
      }
    }
  }
  os << "training:\n";
  line(os, "  kept for backward", kept,
       "forward values the backward pass reads");
  line(os, "  per token per layer", kept / (tokens * layers),
       llvm::formatv("over {0} tokens x {1} layers", tokens, layers).str());
  // A run of layers that keep the same bytes is one line.
  for (auto it = keptByLayer.begin(); it != keptByLayer.end();) {
    auto [first, size] = *it;
    int64_t last = first;
    while (++it != keptByLayer.end() && it->first == last + 1 &&
           it->second == size)
      last = it->first;
    bool one = first == last;
    line(os,
         one ? llvm::formatv("    layer {0}", first).str()
             : llvm::formatv("    layers {0}-{1}", first, last).str(),
         size,
         llvm::formatv("{0}{1} B per token", one ? "" : "each, ", size / tokens)
             .str());
  }
  line(os, "    outside the layers", keptOutside,
       llvm::formatv("{0} B per token", keptOutside / tokens).str());
  line(os, "  gradients", gradients, "of the parameters, in fp32");
}
} // namespace

void moe::printCompileReport(const ArtifactSummary &summary,
                             llvm::ArrayRef<PassTime> passes,
                             llvm::raw_ostream &os) {
  printPasses(passes, os);
  printKernels(summary, os);
  printMemory(summary, os);
  for (const ProgramSummary &program : summary.programs)
    if (func::FuncOp function = program.function;
        function.getName() == "train_step")
      printTraining(function, program.plan, os);
}
