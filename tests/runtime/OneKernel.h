//===- OneKernel.h - one kernel of a fictitious artifact --------*- C++ -*-===//
//
// The flatbuffer of a single fb::Kernel, for launching one op through a
// backend without compiling a model (the CUDA tests and benchmark).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TESTS_RUNTIME_ONEKERNEL_H
#define MOERT_TESTS_RUNTIME_ONEKERNEL_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moert::testing {

/// Owns the buffer; kernel() stays valid as long as this does.
class OneKernel {
public:
  OneKernel(fb::OpKind op, const std::vector<int64_t> &ints,
            const std::vector<double> &floats, size_t operands, size_t results,
            const std::string &stream = "") {
    flatbuffers::FlatBufferBuilder b;
    auto kernel = fb::CreateKernel(
        b, op, b.CreateString("test"),
        b.CreateVector(std::vector<int32_t>(operands)),
        b.CreateVector(std::vector<int32_t>(results)), b.CreateVector(ints),
        b.CreateVector(floats), b.CreateString("test.mlir:1:1"),
        stream.empty() ? 0 : b.CreateString(stream));
    b.Finish(kernel);
    buffer_.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  }
  const fb::Kernel *kernel() const {
    return flatbuffers::GetRoot<fb::Kernel>(buffer_.data());
  }

private:
  std::vector<uint8_t> buffer_;
};

} // namespace moert::testing

#endif // MOERT_TESTS_RUNTIME_ONEKERNEL_H
