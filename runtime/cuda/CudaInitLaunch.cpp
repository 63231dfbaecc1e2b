//===- CudaInitLaunch.cpp - the CUDA backend's initialisation ops ---------===//
//
// The ops of an initialisation program (Drop-Upcycling), as the CPU's
// launch table reads them. The random subsets of RandomIndices are drawn on
// the host (a partial sort of `range` random keys, the CPU's function) and
// uploaded: they are a few thousand indices, once per program.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Init.h"
#include "runtime/cuda/CudaGradLaunch.h"
#include "runtime/cuda/Enqueue.h"
#include "runtime/cuda/StreamScratch.h"
#include "runtime/cuda/kernels/InitKernels.h"
#include "runtime/exec/LaunchAttrs.h"

#include <algorithm>
#include <vector>

namespace moert::cuda {
using namespace launch_attrs;

namespace {

RandomStream randomStream(const KernelLaunch &l, int64_t seedAttr) {
  return {uint64_t(attr(l, seedAttr)), keyOf(stream(l))};
}

/// `count` distinct indices of [0, range), ascending: the CPU's
/// randomIndices (the smallest `count` of `range` random keys).
std::vector<int64_t> randomSubset(int64_t count, int64_t range, uint64_t seed,
                                  uint64_t key) {
  std::vector<std::pair<uint64_t, int64_t>> keys(range);
  for (int64_t i = 0; i < range; ++i)
    keys[i] = {randomBitsAt(seed, key, uint64_t(i)), i};
  std::partial_sort(keys.begin(), keys.begin() + count, keys.end());
  std::vector<int64_t> subset(count);
  for (int64_t i = 0; i < count; ++i)
    subset[i] = keys[i].second;
  std::sort(subset.begin(), subset.end());
  return subset;
}

} // namespace

absl::Status noKernel(const KernelLaunch &launch) {
  return absl::UnimplementedError(
      absl::StrCat("the CUDA backend has no kernel for ",
                   fb::EnumNameOpKind(launch.kernel->op()), " yet (",
                   launch.kernel->location()->str(), ")"));
}

absl::Status checkCudaInitLaunch(const KernelLaunch &launch) {
  switch (launch.kernel->op()) {
  case fb::OpKind::RandomIndices:
  case fb::OpKind::SliceMoments:
  case fb::OpKind::ResampleSlice:
  case fb::OpKind::AddNoiseSlice:
  case fb::OpKind::RandomTensor:
  case fb::OpKind::Slice:
    return absl::OkStatus();
  case fb::OpKind::Stack:
    if (expertSplit(launch) > 1)
      return absl::UnimplementedError(
          "the CUDA backend stacks experts on one device only, for now");
    return absl::OkStatus();
  default:
    return noKernel(launch);
  }
}

absl::Status launchCudaInit(const KernelLaunch &l, CudaContext &context,
                            cudaStream_t stream, DeviceFault *fault) {
  const auto &in = l.operands;
  const TensorRef &out = l.results[0];
  switch (l.kernel->op()) {
  case fb::OpKind::RandomIndices: {
    std::vector<int64_t> subset =
        randomSubset(attr(l, 0), attr(l, 1), uint64_t(attr(l, 2)),
                     keyOf(launch_attrs::stream(l)));
    if (auto s = cudaStatus(cudaMemcpyAsync(out.data, subset.data(),
                                            subset.size() * sizeof(int64_t),
                                            cudaMemcpyHostToDevice, stream),
                            "cuda.random_indices");
        !s.ok())
      return s;
    // The host vector must outlive the copy.
    return cudaStatus(cudaStreamSynchronize(stream), "cuda.random_indices");
  }
  case fb::OpKind::SliceMoments:
    return cudaStatus(sliceMoments(in[0].as<float>(), in[0].shape[0],
                                   in[0].shape[1], in[1].as<int64_t>(),
                                   in[1].shape[0], attr(l, 0), out.as<float>(),
                                   l.results[1].as<float>(), fault,
                                   context.site(l), stream),
                      "cuda.slice_moments");
  case fb::OpKind::ResampleSlice:
  case fb::OpKind::AddNoiseSlice: {
    bool noise = l.kernel->op() == fb::OpKind::AddNoiseSlice;
    const TensorRef &x = in[0];
    int64_t axis = attr(l, 0), count = in[1].shape[0],
            other = axis == 0 ? x.shape[1] : x.shape[0];
    int32_t site = context.site(l);
    return enqueue("cuda.redraw_slice", elementwiseShape(count * other),
                   context.limits, [&](const LaunchShape &shape) {
                     return redrawSlice(
                         x.as<float>(), x.shape[0], x.shape[1],
                         in[1].as<int64_t>(), count, axis,
                         noise ? nullptr : in[2].as<float>(),
                         noise ? nullptr : in[3].as<float>(),
                         noise ? float(floatAttr(l, 0)) : 0.0f, noise,
                         randomStream(l, 1), out.as<float>(), fault, site,
                         shape, stream);
                   });
  }
  case fb::OpKind::RandomTensor: {
    int64_t n = out.numElements();
    bool centered = attr(l, 1) != 0;
    StreamScratch scratch(stream);
    double *sum = nullptr;
    if (auto s = scratch.take(1, sum); !s.ok())
      return s;
    return enqueue("cuda.random_tensor", elementwiseShape(n), context.limits,
                   [&](const LaunchShape &shape) {
                     return centered
                                ? centeredUniform(out.as<float>(), n,
                                                  floatAttr(l, 0), sum,
                                                  randomStream(l, 0), shape,
                                                  stream)
                                : randomNormal(out.as<float>(), n, 0.0f,
                                               float(floatAttr(l, 0)),
                                               randomStream(l, 0), shape,
                                               stream);
                   });
  }
  case fb::OpKind::Slice: {
    // out = x[offset : offset + size] along axis 0 or 1 of x [rows, cols].
    const TensorRef &x = in[0];
    int64_t cols = x.shape[1], axis = attr(l, 0), offset = attr(l, 1);
    int64_t outRows = out.shape[0], outCols = out.shape[1];
    const float *first = axis == 0 ? x.as<float>() + offset * cols
                                   : x.as<float>() + offset;
    return cudaStatus(cudaMemcpy2DAsync(out.data, outCols * sizeof(float),
                                        first, cols * sizeof(float),
                                        outCols * sizeof(float), outRows,
                                        cudaMemcpyDeviceToDevice, stream),
                      "cuda.slice");
  }
  case fb::OpKind::Stack: {
    auto *target = out.as<uint8_t>();
    for (const TensorRef &part : in) {
      size_t bytes = part.numElements() * sizeof(float);
      if (auto s = cudaStatus(cudaMemcpyAsync(target, part.data, bytes,
                                              cudaMemcpyDeviceToDevice, stream),
                              "cuda.stack");
          !s.ok())
        return s;
      target += bytes;
    }
    return absl::OkStatus();
  }
  default:
    return noKernel(l);
  }
}

} // namespace moert::cuda
