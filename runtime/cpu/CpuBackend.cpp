//===- CpuBackend.cpp - the CPU backend -----------------------------------===//
//
// Host memory, synchronous streams (a launch has finished when enqueue
// returns), and one case per op that hands the bound tensors to the kernels
// of runtime/cpu.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/checkpoint/Init.h"
#include "runtime/cpu/CpuLaunch.h"
#include "runtime/cpu/Grad.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/PackedExperts.h"
#include "runtime/cpu/Scratch.h"
#include "runtime/exec/Fp32View.h"
#include "runtime/exec/LaunchChecks.h"

#include "absl/strings/str_cat.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

namespace moert {
using namespace cpu_launch;

absl::Status cpu_launch::checkCounts(const int64_t *counts, int64_t experts,
                                     int64_t rows) {
  int64_t total = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (counts[e] < 0)
      return absl::InvalidArgumentError("negative expert row count");
    total += counts[e];
  }
  if (total != rows)
    return absl::InvalidArgumentError(
        "expert row counts do not sum to the grouped rows");
  return absl::OkStatus();
}

absl::Status cpu_launch::Ranks::check(const KernelLaunch &launch) const {
  int64_t split = expertSplit(launch);
  if (split <= 1)
    return absl::OkStatus();
  int have = parallel ? parallel->expertParallel : 1;
  if (split != have)
    return absl::InvalidArgumentError(absl::StrCat(
        "the experts of this block are split over ", split,
        " ranks but this run's expert groups hold ", have));
  return absl::OkStatus();
}

namespace {

class HostBuffer : public DeviceBuffer {
public:
  explicit HostBuffer(size_t bytes)
      : bytes_(bytes),
        data_(static_cast<uint8_t *>(std::aligned_alloc(64, roundUp(bytes)))) {}
  ~HostBuffer() override { std::free(data_); }
  void *data() override { return data_; }
  size_t size() const override { return bytes_; }
  bool valid() const { return data_ != nullptr; }

private:
  static size_t roundUp(size_t bytes) {
    return (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  }
  size_t bytes_;
  uint8_t *data_;
};

class HostStream : public Stream {
public:
  absl::Status synchronize() override { return absl::OkStatus(); }
};

// The fp32 views of launches (Fp32View.h): copies in the calling thread's
// scratch, converted on all threads.
struct Fp32ViewScratch;
absl::StatusOr<float *> fp32Scratch(int64_t count) {
  return cpu::threadScratch<float, Fp32ViewScratch>(size_t(count));
}
absl::Status widenCopy(const uint16_t *from, int64_t count, float *to) {
  cpu::widenBf16(from, count, to);
  return absl::OkStatus();
}
absl::Status roundCopy(const float *from, int64_t count, uint16_t *to) {
  cpu::roundToBf16(from, count, to);
  return absl::OkStatus();
}

class CpuBackend : public Backend {
public:
  CpuBackend(comm::Parallelism *parallel, CpuBackendOptions options)
      : ranks_{parallel}, options_(options) {}
  std::string_view name() const override { return "cpu"; }
  bool sharesHostMemory() const override { return true; }

  absl::StatusOr<std::unique_ptr<DeviceBuffer>>
  allocate(size_t bytes) override {
    auto buffer = std::make_unique<HostBuffer>(bytes);
    if (!buffer->valid())
      return absl::ResourceExhaustedError("cannot allocate " +
                                          std::to_string(bytes) + " bytes");
    return std::unique_ptr<DeviceBuffer>(std::move(buffer));
  }
  std::unique_ptr<Stream> createStream() override {
    return std::make_unique<HostStream>();
  }
  absl::Status copyToDevice(const void *host, void *device, size_t bytes,
                            Stream &) override {
    std::memcpy(device, host, bytes);
    return absl::OkStatus();
  }
  absl::Status copyToHost(const void *device, void *host, size_t bytes,
                          Stream &) override {
    std::memcpy(host, device, bytes);
    return absl::OkStatus();
  }
  absl::Status prepare(KernelLaunch &launch) override {
    if (auto status = ranks_.check(launch); !status.ok())
      return status;
    if (auto status = checkLaunch(launch); !status.ok())
      return status;
    return packExperts(launch);
  }
  absl::Status launch(const KernelLaunch &launch, Stream &) override {
    // A kernel without a path for the bf16 activations it was given runs on
    // an fp32 view of them.
    if (hasBf16Activations(launch) && !readsStoredBf16(launch))
      return launchOnFp32View(
          launch, {&fp32Scratch, &widenCopy, &roundCopy},
          [&](const KernelLaunch &view) { return run(view); });
    return run(launch);
  }

private:
  absl::Status run(const KernelLaunch &launch);

  /// The kernels that read and write bf16 activations as they are stored:
  /// norms and rope, and the bf16 GEMMs and bf16 attention (q, k, v and its
  /// output all bf16) where they are native.
  static bool readsStoredBf16(const KernelLaunch &launch) {
    const auto &in = launch.operands;
    switch (launch.kernel->op()) {
    case fb::OpKind::RmsNorm:
    case fb::OpKind::Rope:
      return true;
    case fb::OpKind::Linear:
      return in[1].dtype == DType::kBF16 && cpu::bf16MatmulIsNative();
    case fb::OpKind::LinearGradWeight:
      return attrOr(launch, 0, 0) != 0 && cpu::bf16MatmulIsNative();
    case fb::OpKind::Attention:
    case fb::OpKind::AttentionGrad: {
      bool forward = launch.kernel->op() == fb::OpKind::Attention;
      auto bf16 = [](const TensorRef &t) { return t.dtype == DType::kBF16; };
      bool allBf16 = bf16(in[0]) && bf16(in[1]) && bf16(in[2]) &&
                     (!forward || bf16(launch.results[0]));
      return allBf16 && attrOr(launch, 3, 0) != 0 &&
             cpu::bf16AttentionIsNative(lastDim(in[0]) / attr(launch, 0));
    }
    default:
      return false;
    }
  }

  /// A fused forward block whose weights are constant and whose experts are
  /// all this rank's gets them repacked for the GEMM (PackedExperts.h).
  /// Launches of the same weights (generation's prefill and decode steps)
  /// share one copy: while a launch holds it, the weights it was made from
  /// keep their values.
  absl::Status packExperts(KernelLaunch &launch) {
    if (!options_.repackExperts || !launch.constantWeights ||
        launch.kernel->op() != fb::OpKind::FusedExperts ||
        ranks_.experts(launch) != nullptr)
      return absl::OkStatus();
    cpu::MoeBlockWeights block = moeBlockWeights(launch);
    std::lock_guard<std::mutex> lock(packedMutex_);
    std::weak_ptr<const cpu::PackedExperts> &shared =
        packed_[{block.gate.data, block.up.data, block.down.data}];
    if (auto alive = shared.lock()) {
      launch.prepared = std::move(alive);
      return absl::OkStatus();
    }
    auto packed = cpu::PackedExperts::pack(block);
    if (!packed.ok())
      return packed.status();
    shared = *packed;
    launch.prepared = *std::move(packed);
    return absl::OkStatus();
  }

  Ranks ranks_;
  CpuBackendOptions options_;
  std::mutex packedMutex_;
  std::map<std::tuple<const void *, const void *, const void *>,
           std::weak_ptr<const cpu::PackedExperts>>
      packed_; // by the gate, up and down weights' addresses

};

absl::Status CpuBackend::run(const KernelLaunch &l) {
  const auto &in = l.operands;
  if (l.kernel->op() == fb::OpKind::CacheWrite) { // the one without results
    const TensorRef &cache = in[0], &rows = in[1];
    return cpu::cacheWrite(rows.as<float>(), in[2].as<int32_t>(),
                           rows.shape[0], rows.shape[1], rows.shape[2],
                           cache.shape[1], cache.as<float>());
  }
  const TensorRef &out = l.results[0];
  switch (l.kernel->op()) {
  case fb::OpKind::Embedding:
    return cpu::embedding(weight(in[0]), in[0].shape[0], in[0].shape[1],
                          in[1].as<int32_t>(), in[1].numElements(),
                          out.as<float>());
  case fb::OpKind::RmsNorm: {
    int64_t group = in[1].shape[0]; // the launch checks made it divide
    int64_t rows = in[0].numElements() / group;
    if (out.dtype == DType::kBF16)
      cpu::rmsNormToBf16(in[0].as<float>(), weight(in[1]), rows, group,
                         floatAttr(l, 0), out.as<uint16_t>());
    else
      cpu::rmsNorm(in[0].as<float>(), weight(in[1]), rows, group,
                   floatAttr(l, 0), out.as<float>());
    return absl::OkStatus();
  }
  case fb::OpKind::AddBias:
    cpu::addBias(in[0].as<float>(), weight(in[1]), rows(in[0]), lastDim(in[0]),
                 out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Clamp:
    cpu::clamp(in[0].as<float>(), out.numElements(), float(floatAttr(l, 0)),
               out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::SigmoidGate:
    cpu::sigmoidGate(in[0].as<float>(), in[1].as<float>(), rows(in[0]),
                     lastDim(in[0]), out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Linear:
    return cpu::linearStored(in[0].data, in[0].dtype == DType::kBF16,
                             rows(in[0]), lastDim(in[0]), weight(in[1]),
                             in[1].shape[0], out.data,
                             out.dtype == DType::kBF16);
  case fb::OpKind::Rope: {
    int64_t heads = attr(l, 0);
    const void *positions = in.size() > 1 ? in[1].data : nullptr;
    DType positionsType = in.size() > 1 ? in[1].dtype : DType::kI32;
    bool inverse = attrOr(l, 1, 0) != 0;
    if (out.dtype == DType::kBF16)
      cpu::ropeToBf16(in[0].as<float>(), out.as<uint16_t>(), in[0].shape[0],
                      in[0].shape[1], heads, lastDim(in[0]) / heads,
                      floatAttr(l, 0), positions, positionsType, inverse);
    else
      cpu::rope(in[0].as<float>(), out.as<float>(), in[0].shape[0],
                in[0].shape[1], heads, lastDim(in[0]) / heads, floatAttr(l, 0),
                positions, positionsType, inverse);
    return absl::OkStatus();
  }
  case fb::OpKind::Attention: {
    int64_t heads = attr(l, 0);
    if (out.dtype == DType::kBF16) { // with q, k and v (readsStoredBf16)
      cpu::attentionStoredBf16(in[0].as<uint16_t>(), in[1].as<uint16_t>(),
                               in[2].as<uint16_t>(), in[0].shape[0],
                               in[0].shape[1], heads, attr(l, 1),
                               lastDim(in[0]) / heads, attr(l, 2) != 0,
                               floatAttr(l, 0), out.as<uint16_t>());
      return absl::OkStatus();
    }
    cpu::attention(in[0].as<float>(), in[1].as<float>(), in[2].as<float>(),
                   in[0].shape[0], in[0].shape[1], heads, attr(l, 1),
                   lastDim(in[0]) / heads, attr(l, 2) != 0, floatAttr(l, 0),
                   out.as<float>(), /*bf16=*/attrOr(l, 3, 0) != 0);
    return absl::OkStatus();
  }
  case fb::OpKind::Add:
    cpu::add(in[0].as<float>(), in[1].as<float>(), out.numElements(),
             out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Mul:
    cpu::mul(in[0].as<float>(), in[1].as<float>(), out.numElements(),
             out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Silu:
    cpu::silu(in[0].as<float>(), out.numElements(), out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Swiglu:
    cpu::swiglu(in[0].as<float>(), in[1].as<float>(), out.numElements(),
                out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Router: {
    int64_t tokens = rows(in[0]), experts = in[1].shape[0];
    float *logits = l.results[0].as<float>();
    if (auto status = cpu::linear(in[0].as<float>(), tokens, lastDim(in[0]),
                                  weight(in[1]), experts, logits);
        !status.ok())
      return status;
    cpu::routerTopK(logits, tokens, experts, attr(l, 0), attr(l, 1) != 0,
                    l.results[1].as<float>(), l.results[2].as<int32_t>());
    return absl::OkStatus();
  }
  case fb::OpKind::Dispatch:
    return cpu::dispatch(in[0].as<float>(), in[1].as<int32_t>(), rows(in[0]),
                         lastDim(in[1]), attr(l, 0), lastDim(in[0]),
                         out.as<float>(), l.results[1].as<int64_t>(),
                         l.results[2].as<int32_t>());
  case fb::OpKind::ExpertMlp:
  case fb::OpKind::ExpertMlpTrain: { // the latter keeps the hidden activations
    const TensorRef &gate = in[2];
    const int64_t *counts = in[1].as<int64_t>();
    if (auto status = checkCounts(counts, gate.shape[0], in[0].shape[0]);
        !status.ok())
      return status;
    bool keep = l.results.size() == 3;
    return cpu::expertMlp(in[0].as<float>(), counts, gate.shape[0],
                          gate.shape[2], gate.shape[1], weight(in[2]),
                          weight(in[3]), weight(in[4]), out.as<float>(),
                          keep ? l.results[1].as<float>() : nullptr,
                          keep ? l.results[2].as<float>() : nullptr);
  }
  case fb::OpKind::Combine:
    return cpu::combine(in[0].as<float>(), in[1].as<float>(),
                        in[2].as<int32_t>(), rows(in[1]), lastDim(in[1]),
                        lastDim(in[0]), out.as<float>());
  case fb::OpKind::FusedExperts:
  case fb::OpKind::FusedExpertsTrain: { // the latter keeps the hidden states
    cpu::KeptHidden kept;
    if (l.results.size() == 4)
      kept = {l.results[2].as<float>(), l.results[3].as<float>()};
    return cpu::fusedExperts(in[0].as<float>(), rows(in[0]), moeBlockWeights(l),
                             attr(l, 0), attr(l, 1) != 0, out.as<float>(),
                             l.results[1].as<float>(), ranks_.experts(l),
                             ranks_.exchangeChunks(), unlabelledTail(l), kept);
  }
  case fb::OpKind::CrossEntropy:
    return cpu::crossEntropy(in[0].as<float>(), in[1].as<int32_t>(),
                             rows(in[0]), lastDim(in[0]), attr(l, 0),
                             out.as<float>(), ranks_.world());
  case fb::OpKind::LoadBalancingLoss: {
    PerLayer layer = perLayer(l, in.size() - 1, /*grads=*/false);
    return cpu::loadBalancingLoss(layer.logits, layer.tokens, lastDim(in[1]),
                                  attr(l, 0), out.as<float>(), tokenMask(l),
                                  ranks_.world());
  }
  case fb::OpKind::RandomIndices:
    cpu::randomIndices(attr(l, 0), attr(l, 1), uint64_t(attr(l, 2)),
                       keyOf(stream(l)), out.as<int64_t>());
    return absl::OkStatus();
  case fb::OpKind::SliceMoments:
    return cpu::sliceMoments(in[0].as<float>(), in[0].shape[0], in[0].shape[1],
                             in[1].as<int64_t>(), in[1].shape[0], attr(l, 0),
                             l.results[0].as<float>(),
                             l.results[1].as<float>());
  case fb::OpKind::ResampleSlice:
    return cpu::redrawSlice(in[0].as<float>(), in[0].shape[0], in[0].shape[1],
                            in[1].as<int64_t>(), in[1].shape[0], attr(l, 0),
                            *in[2].as<float>(), *in[3].as<float>(),
                            /*noise=*/false, uint64_t(attr(l, 1)),
                            keyOf(stream(l)), out.as<float>());
  case fb::OpKind::AddNoiseSlice:
    return cpu::redrawSlice(in[0].as<float>(), in[0].shape[0], in[0].shape[1],
                            in[1].as<int64_t>(), in[1].shape[0], attr(l, 0),
                            0.0f, float(floatAttr(l, 0)), /*noise=*/true,
                            uint64_t(attr(l, 1)), keyOf(stream(l)),
                            out.as<float>());
  case fb::OpKind::RandomTensor:
    cpu::randomTensor(out.numElements(), floatAttr(l, 0), attr(l, 1) != 0,
                      uint64_t(attr(l, 0)), keyOf(stream(l)), out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Slice:
    cpu::sliceMatrix(in[0].as<float>(), in[0].shape[0], in[0].shape[1],
                     attr(l, 0), attr(l, 1), out.shape[attr(l, 0)],
                     out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Scale:
    cpu::scale(in[0].as<float>(), out.numElements(), floatAttr(l, 0),
               out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::Stack: { // this rank's share of the inputs, when split
    size_t share = in.size() / size_t(expertSplit(l));
    size_t first = size_t(ranks_.expertShare()) * share;
    uint8_t *target = out.as<uint8_t>();
    for (size_t i = first; i < first + share; ++i) {
      size_t bytes = in[i].numElements() * sizeof(float);
      std::memcpy(target, in[i].data, bytes);
      target += bytes;
    }
    return absl::OkStatus();
  }
  case fb::OpKind::CachedAttention: {
    const TensorRef &q = in[0], &keys = in[2];
    int64_t heads = attr(l, 0);
    return cpu::cachedAttention(q.as<float>(), in[1].as<int32_t>(),
                                keys.as<float>(), in[3].as<float>(), q.shape[0],
                                q.shape[1], keys.shape[1], heads, attr(l, 1),
                                lastDim(q) / heads, floatAttr(l, 0),
                                attr(l, 2) != 0, out.as<float>());
  }
  case fb::OpKind::SelectRows:
    return cpu::selectRows(in[0].as<float>(), in[1].as<int32_t>(),
                           in[0].shape[0], in[0].shape[1], in[1].shape[1],
                           lastDim(in[0]), out.as<float>());
  case fb::OpKind::WriteParam: // a transfer the executor carries out
    break;
  default:
    return launchGrad(l, ranks_);
  }
  return absl::UnimplementedError("no CPU kernel for this op");
}
} // namespace

std::unique_ptr<Backend> createCpuBackend(comm::Parallelism *parallel,
                                          CpuBackendOptions options) {
  return std::make_unique<CpuBackend>(parallel, options);
}

} // namespace moert
