//===- HostDevice.h - arithmetic compiled for both sides --------*- C++ -*-===//
//
// The per-element and per-row arithmetic of the CUDA kernels lives in
// headers of this directory as MOEC_HD functions: nvcc compiles them into the
// kernels, the host compiler into the CPU unit tests that check them against
// the CPU kernels (no GPU is needed to test what a kernel computes).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_MATH_HOSTDEVICE_H
#define MOERT_CUDA_MATH_HOSTDEVICE_H

#if defined(__CUDACC__)
#define MOEC_HD __host__ __device__
#else
#define MOEC_HD
#endif

#endif // MOERT_CUDA_MATH_HOSTDEVICE_H
