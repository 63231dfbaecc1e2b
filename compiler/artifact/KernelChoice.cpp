//===- KernelChoice.cpp - the runtime kernel each op becomes --------------===//

#include "compiler/artifact/KernelChoice.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
namespace fb = moert::fb;

bool moe::isBf16(Value value) {
  return getElementTypeOrSelf(value.getType()).isBF16();
}

namespace {
std::string weightSuffix(Value weight) {
  Type element = getElementTypeOrSelf(weight.getType());
  return element.isBF16() ? ".bf16" : element.isF16() ? ".f16" : ".f32";
}

/// A fused block's (or its backward's) integer attributes: [top_k,
/// normalize, expert_parallel], then ignore_index when the last operand is
/// the labels whose trailing ignored tokens skip the experts.
template <typename FusedOp>
std::vector<int64_t> fusedBlockInts(FusedOp op, int64_t expertParallel) {
  std::vector<int64_t> ints = {op.getTopK(), op.getNormalize(),
                               expertParallel};
  if (op.getLabels())
    ints.push_back(op.getIgnoreIndex());
  return ints;
}

/// The kernels of the training ops.
std::optional<KernelInfo> gradKernelFor(Operation *op) {
  using Info = std::optional<KernelInfo>;
  return llvm::TypeSwitch<Operation *, Info>(op)
      .Case([&](FillOp f) -> Info {
        return KernelInfo{fb::OpKind::Fill, "cpu.fill", {},
                          {f.getValue().convertToDouble()}};
      })
      .Case([&](EmbeddingGradOp) -> Info {
        return KernelInfo{fb::OpKind::EmbeddingGrad, "cpu.embedding_grad", {}, {}};
      })
      .Case([&](BiasGradOp) -> Info {
        return KernelInfo{fb::OpKind::BiasGrad, "cpu.bias_grad", {}, {}};
      })
      .Case([&](ClampGradOp c) -> Info {
        return KernelInfo{fb::OpKind::ClampGrad, "cpu.clamp_grad", {},
                          {c.getLimit().convertToDouble()}};
      })
      .Case([&](SigmoidGateGradOp) -> Info {
        return KernelInfo{fb::OpKind::SigmoidGateGrad,
                          "cpu.sigmoid_gate_grad", {}, {}};
      })
      .Case([&](RMSNormGradOp n) -> Info {
        return KernelInfo{fb::OpKind::RmsNormGrad, "cpu.rms_norm_grad", {},
                          {n.getEpsilon().convertToDouble()}};
      })
      .Case([&](LinearGradInputOp l) -> Info {
        return KernelInfo{fb::OpKind::LinearGradInput,
                          "cpu.linear_grad_input.onednn" +
                              weightSuffix(l.getWeight()),
                          {}, {}};
      })
      .Case([&](LinearGradWeightOp l) -> Info {
        // The gradient has the weight's type: a bf16 weight's gradient is a
        // bf16 GEMM (attribute 1), accumulated and written in fp32.
        bool bf16 = isBf16(l.getResult());
        return KernelInfo{fb::OpKind::LinearGradWeight,
                          std::string("cpu.linear_grad_weight.onednn") +
                              (bf16 ? ".bf16" : ".f32"),
                          {int64_t(bf16)}, {}};
      })
      .Case([&](AttentionGradOp a) -> Info {
        bool bf16 = isBf16(a.getQuery());
        return KernelInfo{fb::OpKind::AttentionGrad,
                          bf16 ? "cpu.attention_grad.bf16"
                               : "cpu.attention_grad",
                          {a.getNumHeads(), a.getNumKvHeads(), a.getCausal(),
                           int64_t(bf16)},
                          {a.getScale().convertToDouble()}};
      })
      .Case([&](SiluGradOp) -> Info {
        return KernelInfo{fb::OpKind::SiluGrad, "cpu.silu_grad", {}, {}};
      })
      .Case([&](SwigluGradOp) -> Info {
        return KernelInfo{fb::OpKind::SwigluGrad, "cpu.swiglu_grad", {}, {}};
      })
      .Case([&](RouterGradOp r) -> Info {
        return KernelInfo{fb::OpKind::RouterGrad, "cpu.router_grad",
                          {r.getTopK(), r.getNormalize()}, {}};
      })
      .Case([&](DispatchGradOp d) -> Info {
        return KernelInfo{fb::OpKind::DispatchGrad, "cpu.dispatch_grad",
                          {d.getTopK()}, {}};
      })
      .Case([&](ExpertMLPGradOp m) -> Info {
        return KernelInfo{fb::OpKind::ExpertMlpGrad,
                          "cpu.expert_mlp_grad.onednn" + weightSuffix(m.getGate()),
                          {}, {}};
      })
      .Case([&](ExpertMLPTrainOp m) -> Info {
        return KernelInfo{fb::OpKind::ExpertMlpTrain,
                          "cpu.expert_mlp_train.onednn" + weightSuffix(m.getGate()),
                          {}, {}};
      })
      .Case([&](FusedExpertsGradOp f) -> Info {
        return KernelInfo{fb::OpKind::FusedExpertsGrad,
                          "cpu.fused_experts_grad.onednn" +
                              weightSuffix(f.getGate()),
                          fusedBlockInts(f, f.getExpertParallel()), {}};
      })
      .Case([&](FusedExpertsTrainOp f) -> Info {
        return KernelInfo{fb::OpKind::FusedExpertsTrain,
                          "cpu.fused_experts_train.onednn" +
                              weightSuffix(f.getGate()),
                          fusedBlockInts(f, 1), {}};
      })
      .Case([&](CombineGradOp) -> Info {
        return KernelInfo{fb::OpKind::CombineGrad, "cpu.combine_grad", {}, {}};
      })
      .Case([&](CrossEntropyGradOp c) -> Info {
        return KernelInfo{fb::OpKind::CrossEntropyGrad, "cpu.cross_entropy_grad",
                          {c.getIgnoreIndex()}, {}};
      })
      .Case([&](LoadBalancingLossGradOp l) -> Info {
        return KernelInfo{fb::OpKind::LoadBalancingLossGrad,
                          "cpu.load_balancing_loss_grad",
                          {l.getTopK(), l.getIgnoreIndex()}, {}};
      })
      .Case([&](RouterZLossOp z) -> Info {
        return KernelInfo{fb::OpKind::RouterZLoss, "cpu.router_z_loss",
                          {z.getIgnoreIndex()}, {}};
      })
      .Case([&](RouterZLossGradOp z) -> Info {
        return KernelInfo{fb::OpKind::RouterZLossGrad, "cpu.router_z_loss_grad",
                          {z.getIgnoreIndex()}, {}};
      })
      .Default([](Operation *) -> Info { return std::nullopt; });
}

} // namespace

std::optional<KernelInfo> moe::kernelChoice(Operation *op) {
  using Info = std::optional<KernelInfo>;
  return llvm::TypeSwitch<Operation *, Info>(op)
      .Case([&](EmbeddingOp e) -> Info {
        return KernelInfo{fb::OpKind::Embedding,
                          "cpu.embedding" + weightSuffix(e.getTable()), {}, {}};
      })
      .Case([&](RMSNormOp n) -> Info {
        return KernelInfo{fb::OpKind::RmsNorm, "cpu.rms_norm",
                          {}, {n.getEpsilon().convertToDouble()}};
      })
      .Case([&](LinearOp l) -> Info {
        return KernelInfo{fb::OpKind::Linear,
                          "cpu.linear.onednn" + weightSuffix(l.getWeight()),
                          {}, {}};
      })
      .Case([&](RopeOp r) -> Info {
        return KernelInfo{fb::OpKind::Rope,
                          r.getInverse() ? "cpu.rope.inverse" : "cpu.rope",
                          {r.getNumHeads(), r.getInverse()},
                          {r.getTheta().convertToDouble()}};
      })
      .Case([&](AttentionOp a) -> Info {
        double scale = a.getScale() ? a.getScale()->convertToDouble()
                                    : 1.0 / std::sqrt(double(a.getHeadDim()));
        bool bf16 = isBf16(a.getQuery());
        return KernelInfo{fb::OpKind::Attention,
                          bf16 ? "cpu.attention.causal_gqa.bf16"
                               : "cpu.attention.causal_gqa",
                          {a.getNumHeads(), a.getNumKvHeads(), a.getCausal(),
                           int64_t(bf16)},
                          {scale}};
      })
      .Case([&](AddOp) -> Info {
        return KernelInfo{fb::OpKind::Add, "cpu.add", {}, {}};
      })
      .Case([&](MulOp) -> Info {
        return KernelInfo{fb::OpKind::Mul, "cpu.mul", {}, {}};
      })
      .Case([&](SiluOp) -> Info {
        return KernelInfo{fb::OpKind::Silu, "cpu.silu", {}, {}};
      })
      .Case([&](SwigluOp) -> Info {
        return KernelInfo{fb::OpKind::Swiglu, "cpu.swiglu", {}, {}};
      })
      .Case([&](RouterOp r) -> Info {
        return KernelInfo{fb::OpKind::Router,
                          "cpu.router.topk_softmax" + weightSuffix(r.getWeight()),
                          {r.getTopK(), r.getNormalize()}, {}};
      })
      .Case([&](DispatchOp d) -> Info {
        return KernelInfo{fb::OpKind::Dispatch, "cpu.dispatch.counting_sort",
                          {d.getNumExperts()}, {}};
      })
      .Case([&](ExpertMLPOp m) -> Info {
        return KernelInfo{fb::OpKind::ExpertMlp,
                          "cpu.expert_mlp.onednn" + weightSuffix(m.getGate()),
                          {}, {}};
      })
      .Case([&](FusedExpertsOp f) -> Info {
        return KernelInfo{fb::OpKind::FusedExperts,
                          "cpu.fused_experts.onednn" + weightSuffix(f.getGate()),
                          fusedBlockInts(f, f.getExpertParallel()), {}};
      })
      .Case([&](CombineOp) -> Info {
        return KernelInfo{fb::OpKind::Combine, "cpu.combine", {}, {}};
      })
      .Case([&](CrossEntropyOp c) -> Info {
        return KernelInfo{fb::OpKind::CrossEntropy, "cpu.cross_entropy",
                          {c.getIgnoreIndex()}, {}};
      })
      .Case([&](LoadBalancingLossOp l) -> Info {
        return KernelInfo{fb::OpKind::LoadBalancingLoss,
                          "cpu.load_balancing_loss",
                          {l.getTopK(), l.getIgnoreIndex()}, {}};
      })
      .Case([&](RandomIndicesOp r) -> Info {
        return KernelInfo{fb::OpKind::RandomIndices, "cpu.random_indices",
                          {r.getCount(), r.getRange(), r.getSeed()}, {},
                          r.getStream().str()};
      })
      .Case([&](SliceMomentsOp m) -> Info {
        return KernelInfo{fb::OpKind::SliceMoments, "cpu.slice_moments",
                          {m.getAxis()}, {}};
      })
      .Case([&](ResampleSliceOp r) -> Info {
        return KernelInfo{fb::OpKind::ResampleSlice, "cpu.resample_slice",
                          {r.getAxis(), r.getSeed()}, {}, r.getStream().str()};
      })
      .Case([&](AddNoiseSliceOp n) -> Info {
        return KernelInfo{fb::OpKind::AddNoiseSlice, "cpu.add_noise_slice",
                          {n.getAxis(), n.getSeed()},
                          {n.getStd().convertToDouble()}, n.getStream().str()};
      })
      .Case([&](RandomTensorOp r) -> Info {
        return KernelInfo{fb::OpKind::RandomTensor, "cpu.random_tensor",
                          {r.getSeed(), r.getDistribution() == "centered_uniform"},
                          {r.getStd().convertToDouble()}, r.getStream().str()};
      })
      .Case([&](StackOp s) -> Info {
        return KernelInfo{
            fb::OpKind::Stack, "cpu.stack", {s.getExpertParallel()}, {}};
      })
      .Case([&](WriteParamOp) -> Info {
        return KernelInfo{fb::OpKind::WriteParam, "cpu.write_param", {}, {}};
      })
      .Case([&](CacheWriteOp) -> Info {
        return KernelInfo{fb::OpKind::CacheWrite, "cpu.cache_write", {}, {}};
      })
      .Case([&](CachedAttentionOp a) -> Info {
        double scale = a.getScale() ? a.getScale()->convertToDouble()
                                    : 1.0 / std::sqrt(double(a.getHeadDim()));
        bool bf16 = isBf16(a.getQuery());
        return KernelInfo{fb::OpKind::CachedAttention,
                          bf16 ? "cpu.cached_attention.bf16"
                               : "cpu.cached_attention",
                          {a.getNumHeads(), a.getNumKvHeads(), int64_t(bf16)},
                          {scale}};
      })
      .Case([&](SelectRowsOp) -> Info {
        return KernelInfo{fb::OpKind::SelectRows, "cpu.select_rows", {}, {}};
      })
      .Case([&](AddBiasOp a) -> Info {
        return KernelInfo{fb::OpKind::AddBias,
                          "cpu.add_bias" + weightSuffix(a.getBias()), {}, {}};
      })
      .Case([&](ClampOp c) -> Info {
        return KernelInfo{fb::OpKind::Clamp, "cpu.clamp", {},
                          {c.getLimit().convertToDouble()}};
      })
      .Case([&](SliceOp s) -> Info {
        return KernelInfo{fb::OpKind::Slice, "cpu.slice",
                          {s.getAxis(), s.getOffset()}, {}};
      })
      .Case([&](ScaleOp s) -> Info {
        return KernelInfo{fb::OpKind::Scale, "cpu.scale", {},
                          {s.getFactor().convertToDouble()}};
      })
      .Case([&](SigmoidGateOp) -> Info {
        return KernelInfo{fb::OpKind::SigmoidGate, "cpu.sigmoid_gate", {}, {}};
      })
      .Default([](Operation *other) { return gradKernelFor(other); });
}

