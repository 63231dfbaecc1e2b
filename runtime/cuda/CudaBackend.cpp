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
#include "runtime/cuda/CudaStatus.h"
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
  ~CudaBuffer() override { cudaFreeAsync(data_, owner_); }
  void *data() override { return data_; }
  size_t size() const override { return bytes_; }

private:
  void *data_;
  size_t bytes_;
  cudaStream_t owner_;
};

class CudaStream : public Stream {
public:
  CudaStream(cudaStream_t stream, cuda::CudaContext &context)
      : stream_(stream), context_(context) {}
  ~CudaStream() override { cudaStreamDestroy(stream_); }
  cudaStream_t get() const { return stream_; }

  /// Waits, then reports what a kernel found wrong in its data (and clears
  /// it for the next run).
  absl::Status synchronize() override {
    if (auto s = cudaStatus(cudaStreamSynchronize(stream_), "stream");
        !s.ok())
      return s;
    cuda::DeviceFault fault{};
    if (auto s = cudaStatus(cudaMemcpy(&fault, context_.fault, sizeof(fault),
                                       cudaMemcpyDeviceToHost),
                            "reading the fault slot");
        !s.ok())
      return s;
    if (fault.code == cuda::kNoFault)
      return absl::OkStatus();
    if (auto s = cudaStatus(cudaMemset(context_.fault, 0, sizeof(fault)),
                            "clearing the fault slot");
        !s.ok())
      return s;
    std::string where = size_t(fault.site) < context_.siteLocations.size()
                            ? context_.siteLocations[fault.site] + ": "
                            : "";
    return absl::InvalidArgumentError(absl::StrCat(
        where, "token id ", fault.value, " at position ", fault.position,
        " is outside the vocabulary [0, ", fault.limit, ")"));
  }

private:
  cudaStream_t stream_;
  cuda::CudaContext &context_;
};

cudaStream_t raw(Stream &stream) {
  return static_cast<CudaStream &>(stream).get();
}

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
    cudaFree(context_.fault);
    if (internal_)
      cudaStreamDestroy(internal_);
  }
  std::string_view name() const override { return "cuda"; }
  bool sharesHostMemory() const override { return false; }

  static absl::StatusOr<std::unique_ptr<Backend>> create(const CudaOptions &);

  absl::StatusOr<std::unique_ptr<DeviceBuffer>>
  allocate(size_t bytes) override {
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
    cudaStream_t stream = nullptr;
    // A failure here shows at the first use of the (null) stream.
    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    return std::make_unique<CudaStream>(stream, context_);
  }

  absl::Status copyToDevice(const void *host, void *device, size_t bytes,
                            Stream &stream) override {
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

  absl::Status prepare(const KernelLaunch &launch) override {
    if (auto s = cuda::checkCudaLaunch(launch); !s.ok())
      return s;
    return checkLaunch(launch);
  }

  absl::Status launch(const KernelLaunch &launch, Stream &stream) override {
    return cuda::launchCuda(launch, context_, raw(stream));
  }

private:
  static constexpr size_t kStagingBytes = size_t(64) << 20;
  CudaBackend() = default;

  cudaStream_t internal_ = nullptr; // allocations and frees
  void *staging_[2] = {nullptr, nullptr};
  cudaEvent_t staged_[2] = {nullptr, nullptr};
  cuda::CudaContext context_;
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
  std::unique_ptr<CudaBackend> backend(new CudaBackend());
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
  // returning it to the driver at every synchronisation.
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
  if (auto s = cudaStatus(cudaMalloc(&backend->context_.fault,
                                     sizeof(cuda::DeviceFault)),
                          "fault slot");
      !s.ok())
    return s;
  if (auto s = cudaStatus(
          cudaMemset(backend->context_.fault, 0, sizeof(cuda::DeviceFault)),
          "fault slot");
      !s.ok())
    return s;
  absl::StatusOr<std::unique_ptr<cuda::Gemm>> gemm =
      cuda::Gemm::create(options.tf32);
  if (!gemm.ok())
    return gemm.status();
  backend->context_.gemm = std::move(*gemm);
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
