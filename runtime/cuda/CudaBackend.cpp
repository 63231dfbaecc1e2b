//===- CudaBackend.cpp - the CUDA backend ---------------------------------===//
//
// Device memory comes from the device's stream-ordered pool (cudaMallocAsync;
// the pool keeps what is freed for the next allocation). Copies go through
// pinned staging buffers in chunks, so a memory-mapped checkpoint is read
// once, straight into pinned memory, while the previous chunk crosses the
// bus. Copies to the host are complete when copyToHost returns.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/CudaBackend.h"

#include "runtime/cuda/CudaContext.h"
#include "runtime/cuda/CudaOptimizer.h"
#include "runtime/cuda/CudaStatus.h"
#include "runtime/cuda/Enqueue.h"
#include "runtime/cuda/StreamScratch.h"
#include "runtime/cuda/kernels/Kernels.h"
#include "runtime/exec/Fp32View.h"
#include "runtime/exec/LaunchChecks.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace moert {
namespace {
using cuda::cudaStatus;

class CudaBuffer : public DeviceBuffer {
public:
  CudaBuffer(void *data, size_t bytes, cudaStream_t owner)
      : data_(data), bytes_(bytes), owner_(owner) {}
  // Whatever stream last used the buffer (an error may have left kernels
  // running) must be done with it before the pool hands it out again.
  ~CudaBuffer() override {
    cudaDeviceSynchronize();
    cudaFreeAsync(data_, owner_);
  }
  void *data() override { return data_; }
  size_t size() const override { return bytes_; }

private:
  void *data_;
  size_t bytes_;
  cudaStream_t owner_;
};

/// What a kernel found, in the words of the CPU kernel that checks the same.
std::string faultMessage(const cuda::DeviceFault &f) {
  switch (f.code) {
  case cuda::kIdOutOfRange:
    return absl::StrCat("token id ", f.value, " at position ", f.position,
                        " is outside the vocabulary [0, ", f.limit, ")");
  case cuda::kExpertOutOfRange:
    return absl::StrCat("expert index ", f.value, " of slot ", f.position,
                        " is outside [0, ", f.limit, ")");
  case cuda::kPastCapacity:
    return absl::StrCat("position ", f.value, " of sequence ", f.position,
                        " is past the cache capacity ", f.limit);
  case cuda::kRowOutOfRange:
    return absl::StrCat("row index ", f.value, " of sequence ", f.position,
                        " is outside [0, ", f.limit, ")");
  case cuda::kLabelOutOfRange:
    return absl::StrCat("label ", f.value, " at position ", f.position,
                        " is outside the vocabulary [0, ", f.limit, ")");
  case cuda::kSliceIndexOutOfRange:
    return absl::StrCat("slice index ", f.value, " is outside [0, ", f.limit,
                        ")");
  case cuda::kNotPermutation:
    return absl::StrCat("source slots are not a permutation of [0, ", f.limit,
                        ")");
  default:
    return absl::StrCat("kernel fault ", f.code);
  }
}

/// A non-blocking stream with its own fault slot: what its kernels find
/// wrong in their data, reported when it synchronises.
class CudaStream : public Stream {
public:
  CudaStream(int device, const cuda::CudaContext &context)
      : device_(device), context_(context) {
    created_ = cudaStatus(cudaSetDevice(device), "cudaSetDevice");
    if (created_.ok())
      created_ = cudaStatus(
          cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
    if (created_.ok())
      created_ = cudaStatus(cudaMalloc(&fault_, sizeof(cuda::DeviceFault)),
                            "fault slot");
    // Zeroed in the stream's order: a non-blocking stream is not ordered
    // after cudaMemset's legacy default stream.
    if (created_.ok())
      created_ = cudaStatus(
          cudaMemsetAsync(fault_, 0, sizeof(cuda::DeviceFault), stream_),
          "fault slot");
    if (created_.ok())
      created_ = cudaStatus(cudaStreamSynchronize(stream_), "fault slot");
  }
  ~CudaStream() override {
    cudaSetDevice(device_);
    if (stream_) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
    cudaFree(fault_);
  }
  /// OK, or why the stream could not be made (reported at first use).
  const absl::Status &created() const { return created_; }
  cudaStream_t get() const { return stream_; }
  cuda::DeviceFault *fault() const { return fault_; }

  absl::Status synchronize() override {
    if (!created_.ok())
      return created_;
    if (auto s = cudaStatus(cudaStreamSynchronize(stream_), "stream");
        !s.ok())
      return s;
    cuda::DeviceFault fault{};
    if (auto s = cudaStatus(cudaMemcpyAsync(&fault, fault_, sizeof(fault),
                                            cudaMemcpyDeviceToHost, stream_),
                            "reading the fault slot");
        !s.ok())
      return s;
    if (auto s = cudaStatus(cudaStreamSynchronize(stream_), "fault slot");
        !s.ok())
      return s;
    if (fault.code == cuda::kNoFault)
      return absl::OkStatus();
    // Cleared in stream order, for the next run.
    if (auto s = cudaStatus(cudaMemsetAsync(fault_, 0, sizeof(fault), stream_),
                            "clearing the fault slot");
        !s.ok())
      return s;
    if (auto s = cudaStatus(cudaStreamSynchronize(stream_), "fault slot");
        !s.ok())
      return s;
    return absl::InvalidArgumentError(absl::StrCat(
        context_.siteLocation(fault.site), faultMessage(fault)));
  }

private:
  int device_;
  const cuda::CudaContext &context_;
  absl::Status created_;
  cudaStream_t stream_ = nullptr;
  cuda::DeviceFault *fault_ = nullptr;
};

CudaStream &cudaStreamOf(Stream &stream) {
  return static_cast<CudaStream &>(stream);
}
cudaStream_t raw(Stream &stream) { return cudaStreamOf(stream).get(); }

class CudaBackend : public Backend {
public:
  ~CudaBackend() override {
    cudaStreamSynchronize(internal_);
    for (int i = 0; i < 2; ++i) {
      if (staged_[i])
        cudaEventDestroy(staged_[i]);
      if (staging_[i])
        cudaFreeHost(staging_[i]);
    }
    context_.gemm.reset();
    context_.grouped.reset();
    if (internal_)
      cudaStreamDestroy(internal_);
  }
  std::string_view name() const override { return "cuda"; }
  bool sharesHostMemory() const override { return false; }

  static absl::StatusOr<std::unique_ptr<Backend>> create(const CudaOptions &);

  absl::StatusOr<std::unique_ptr<DeviceBuffer>>
  allocate(size_t bytes) override {
    if (auto s = current(); !s.ok())
      return s;
    void *data = nullptr;
    if (auto s = cudaStatus(cudaMallocAsync(&data, std::max<size_t>(bytes, 1),
                                            internal_),
                            absl::StrCat("allocating ", bytes, " bytes"));
        !s.ok())
      return s;
    // Usable on any stream once allocate returns.
    if (auto s = cudaStatus(cudaStreamSynchronize(internal_), "allocation");
        !s.ok())
      return s;
    return std::unique_ptr<DeviceBuffer>(
        std::make_unique<CudaBuffer>(data, bytes, internal_));
  }

  std::unique_ptr<Stream> createStream() override {
    return std::make_unique<CudaStream>(device_, context_);
  }

  absl::Status copyToDevice(const void *host, void *device, size_t bytes,
                            Stream &stream) override {
    if (auto s = ready(stream); !s.ok())
      return s;
    const auto *from = static_cast<const uint8_t *>(host);
    auto *to = static_cast<uint8_t *>(device);
    for (size_t done = 0, i = 0; done < bytes; done += kStagingBytes, i ^= 1) {
      size_t chunk = std::min(kStagingBytes, bytes - done);
      // The buffer's previous chunk must have left before it is refilled.
      if (auto s = cudaStatus(cudaEventSynchronize(staged_[i]), "staging");
          !s.ok())
        return s;
      std::memcpy(staging_[i], from + done, chunk);
      if (auto s = cudaStatus(cudaMemcpyAsync(to + done, staging_[i], chunk,
                                              cudaMemcpyHostToDevice,
                                              raw(stream)),
                              "copy to the device");
          !s.ok())
        return s;
      if (auto s = cudaStatus(cudaEventRecord(staged_[i], raw(stream)),
                              "staging");
          !s.ok())
        return s;
    }
    return absl::OkStatus();
  }

  absl::Status copyToHost(const void *device, void *host, size_t bytes,
                          Stream &stream) override {
    if (auto s = ready(stream); !s.ok())
      return s;
    const auto *from = static_cast<const uint8_t *>(device);
    auto *to = static_cast<uint8_t *>(host);
    for (size_t done = 0; done < bytes; done += kStagingBytes) {
      size_t chunk = std::min(kStagingBytes, bytes - done);
      if (auto s = cudaStatus(cudaEventSynchronize(staged_[0]), "staging");
          !s.ok())
        return s;
      if (auto s = cudaStatus(cudaMemcpyAsync(staging_[0], from + done, chunk,
                                              cudaMemcpyDeviceToHost,
                                              raw(stream)),
                              "copy to the host");
          !s.ok())
        return s;
      if (auto s = cudaStatus(cudaStreamSynchronize(raw(stream)),
                              "copy to the host");
          !s.ok())
        return s;
      std::memcpy(to + done, staging_[0], chunk);
    }
    return absl::OkStatus();
  }

  absl::Status prepare(KernelLaunch &launch) override {
    // The shape rules first: the CUDA checks read operands they vouch for.
    if (auto s = checkLaunch(launch); !s.ok())
      return s;
    return cuda::checkCudaLaunch(launch);
  }

  absl::Status launch(const KernelLaunch &launch, Stream &stream) override {
    absl::Status status = enqueue(launch, stream);
    if (status.ok())
      return status;
    // What failed may follow from a fault an earlier kernel found in its
    // data (an expert index out of range leaves counts that do not add
    // up): that fault is the cause to report, and synchronising clears it
    // for the next run. Faults are InvalidArgument, CUDA errors Internal.
    if (absl::Status fault = stream.synchronize();
        absl::IsInvalidArgument(fault))
      return fault;
    return status;
  }

  DeviceOptimizer *optimizer() override { return &optimizer_; }

private:
  /// launch, without the look for an earlier fault.
  absl::Status enqueue(const KernelLaunch &launch, Stream &stream) {
    if (auto s = ready(stream); !s.ok())
      return s;
    cudaStream_t on = raw(stream);
    auto run = [&](const KernelLaunch &l) {
      return cuda::launchCuda(l, context_, on, cudaStreamOf(stream).fault());
    };
    if (!hasBf16Activations(launch) || cuda::readsStoredBf16(launch))
      return run(launch);
    // The other CUDA kernels read and write fp32 activations: the bf16 ones
    // go through stream-ordered fp32 copies (Fp32View.h).
    cuda::StreamScratch scratch(on);
    auto take = [&](int64_t count) -> absl::StatusOr<float *> {
      float *copies = nullptr;
      if (auto s = scratch.take(count, copies); !s.ok())
        return s;
      return copies;
    };
    auto widen = [&](const uint16_t *from, int64_t count, float *to) {
      if (count == 0)
        return absl::OkStatus();
      return cuda::enqueue("cuda.widen_bf16", cuda::elementwiseShape(count),
                           context_.limits, [&](const cuda::LaunchShape &s) {
                             return cuda::widen(from, DType::kBF16, count, to,
                                                s, on);
                           });
    };
    auto round = [&](const float *from, int64_t count, uint16_t *to) {
      if (count == 0)
        return absl::OkStatus();
      return cuda::enqueue("cuda.round_bf16", cuda::elementwiseShape(count),
                           context_.limits, [&](const cuda::LaunchShape &s) {
                             return cuda::roundToBf16(from, count, to, s, on);
                           });
    };
    return launchOnFp32View(launch, {take, widen, round}, run);
  }

  static constexpr size_t kStagingBytes = size_t(64) << 20;
  explicit CudaBackend(int device) : device_(device) {}

  /// This backend's device is the calling thread's current one.
  absl::Status current() const {
    return cudaStatus(cudaSetDevice(device_), "cudaSetDevice");
  }
  absl::Status ready(Stream &stream) const {
    if (auto s = cudaStreamOf(stream).created(); !s.ok())
      return s;
    return current();
  }

  int device_;
  cudaStream_t internal_ = nullptr; // allocations and frees
  void *staging_[2] = {nullptr, nullptr};
  cudaEvent_t staged_[2] = {nullptr, nullptr};
  cuda::CudaContext context_;
  cuda::CudaOptimizer optimizer_{context_, raw};
};

absl::Status deviceCount(int &count) {
  return cudaStatus(cudaGetDeviceCount(&count), "no CUDA device");
}

absl::StatusOr<std::unique_ptr<Backend>>
CudaBackend::create(const CudaOptions &options) {
  int count = 0;
  if (auto s = deviceCount(count); !s.ok())
    return s;
  if (options.device < 0 || options.device >= count)
    return absl::InvalidArgumentError(absl::StrCat(
        "CUDA device ", options.device, " does not exist (", count,
        count == 1 ? " device" : " devices", " visible)"));
  if (auto s = cudaStatus(cudaSetDevice(options.device), "cudaSetDevice");
      !s.ok())
    return s;
  std::unique_ptr<CudaBackend> backend(new CudaBackend(options.device));
  cudaDeviceProp props;
  if (auto s = cudaStatus(cudaGetDeviceProperties(&props, options.device),
                          "device properties");
      !s.ok())
    return s;
  cuda::DeviceLimits &limits = backend->context_.limits;
  limits.maxGridX = props.maxGridSize[0];
  limits.maxGridY = props.maxGridSize[1];
  limits.maxGridZ = props.maxGridSize[2];
  limits.maxThreads = props.maxThreadsPerBlock;
  limits.maxSharedBytes = int64_t(props.sharedMemPerBlockOptin);

  // The pool keeps freed memory for the next allocation instead of
  // returning it to the driver at every synchronisation (a setting of the
  // device's default pool, so of the whole process).
  cudaMemPool_t pool;
  if (auto s = cudaStatus(cudaDeviceGetDefaultMemPool(&pool, options.device),
                          "memory pool");
      !s.ok())
    return s;
  uint64_t keep = UINT64_MAX;
  cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);

  if (auto s = cudaStatus(cudaStreamCreateWithFlags(&backend->internal_,
                                                    cudaStreamNonBlocking),
                          "stream");
      !s.ok())
    return s;
  for (int i = 0; i < 2; ++i) {
    if (auto s = cudaStatus(cudaHostAlloc(&backend->staging_[i], kStagingBytes,
                                          cudaHostAllocDefault),
                            "pinned staging memory");
        !s.ok())
      return s;
    if (auto s = cudaStatus(cudaEventCreateWithFlags(&backend->staged_[i],
                                                     cudaEventDisableTiming),
                            "event");
        !s.ok())
      return s;
  }
  absl::StatusOr<std::unique_ptr<cuda::Gemm>> gemm =
      cuda::Gemm::create(options.tf32);
  if (!gemm.ok())
    return gemm.status();
  backend->context_.gemm = std::move(*gemm);
  absl::StatusOr<std::unique_ptr<cuda::GroupedGemm>> grouped =
      cuda::GroupedGemm::create(options.tf32);
  if (!grouped.ok())
    return grouped.status();
  backend->context_.grouped = std::move(*grouped);
  backend->context_.expertGemms = options.expertGemms;
  return std::unique_ptr<Backend>(std::move(backend));
}

} // namespace

absl::StatusOr<std::unique_ptr<Backend>>
createCudaBackend(const CudaOptions &options) {
  return CudaBackend::create(options);
}

absl::StatusOr<std::vector<CudaDeviceInfo>> listCudaDevices() {
  int count = 0;
  if (auto s = deviceCount(count); !s.ok())
    return s;
  std::vector<CudaDeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp props;
    if (auto s = cudaStatus(cudaGetDeviceProperties(&props, i),
                            "device properties");
        !s.ok())
      return s;
    devices.push_back({i, props.name, props.major, props.minor,
                       props.totalGlobalMem, props.multiProcessorCount});
  }
  return devices;
}

} // namespace moert
