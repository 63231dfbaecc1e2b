//===- Devices.cpp - choosing the backend a moe-run command uses ----------===//

#include "runtime/tools/Devices.h"

#include "runtime/cpu/CpuBackend.h"
#ifdef MOEC_HAVE_CUDA
#include "runtime/cuda/CudaBackend.h"
#endif

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include <string>

ABSL_FLAG(std::string, device, "cpu",
          "where the kernels run: cpu, cuda (device 0) or cuda:N; "
          "`moe-run devices` lists them");
ABSL_FLAG(bool, repack_experts, true,
          "cpu: inference and generation keep the MoE experts' weights "
          "repacked for the GEMM (faster prompts; the expert weights take "
          "their bytes once more in memory); --no-repack-experts reads them in "
          "place");
ABSL_FLAG(bool, tf32, false,
          "cuda: run fp32 GEMMs on TF32 tensor cores (inputs rounded to "
          "10 mantissa bits)");

namespace moert::tools {

absl::StatusOr<std::unique_ptr<Backend>>
backendFromFlags(comm::Parallelism *parallel) {
  const std::string device = absl::GetFlag(FLAGS_device);
  if (device == "cpu")
    return createCpuBackend(parallel,
                            {absl::GetFlag(FLAGS_repack_experts)});
  int index = 0;
  bool cuda = device == "cuda" ||
              (device.rfind("cuda:", 0) == 0 &&
               absl::SimpleAtoi(device.substr(5), &index) && index >= 0);
  if (!cuda)
    return absl::InvalidArgumentError(absl::StrCat(
        "--device ", device, ": unknown device (cpu, cuda or cuda:N)"));
#ifdef MOEC_HAVE_CUDA
  if (parallel)
    return absl::UnimplementedError(absl::StrCat(
        "--device ", device,
        ": runs of several ranks use the CPU backend for now"));
  absl::StatusOr<std::unique_ptr<Backend>> backend =
      createCudaBackend({index, absl::GetFlag(FLAGS_tf32)});
  if (!backend.ok())
    return absl::Status(backend.status().code(),
                        absl::StrCat("--device ", device, ": ",
                                     backend.status().message()));
  return backend;
#else
  return absl::UnimplementedError(absl::StrCat(
      "--device ", device,
      ": this moe-run was built without the CUDA backend (no CUDA toolkit "
      "at configure time, or -DMOEC_CUDA=OFF)"));
#endif
}

void listDevices(std::ostream &out) {
  out << "cpu: the host (always)\n";
#ifdef MOEC_HAVE_CUDA
  absl::StatusOr<std::vector<CudaDeviceInfo>> devices = listCudaDevices();
  if (!devices.ok()) {
    out << "cuda: built in; " << devices.status().message() << "\n";
    return;
  }
  for (const CudaDeviceInfo &d : *devices)
    out << "cuda:" << d.index << ": " << d.name << ", compute capability "
        << d.major << "." << d.minor << ", " << d.multiprocessors
        << " multiprocessors, "
        << double(d.memoryBytes) / double(1 << 30) << " GiB\n";
#else
  out << "cuda: not built (no CUDA toolkit at configure time, or "
         "-DMOEC_CUDA=OFF)\n";
#endif
}

} // namespace moert::tools
