//===- SafetensorsFuzz.cpp - the safetensors reader and shard indexes -----===//
//
// An input that starts with '{' is a model.safetensors.index.json, opened
// as a checkpoint directory beside a valid one-tensor shard; any other input
// is a .safetensors file. Every tensor's bytes are read, so a view that
// reaches past the mapping shows up under AddressSanitizer.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/HfCheckpoint.h"
#include "runtime/checkpoint/Safetensors.h"
#include "tests/fuzz/FuzzInput.h"

#include <cstring>

namespace {
uint64_t touch(const moert::TensorView &tensor) {
  uint64_t sum = 0;
  for (size_t i = 0; i < tensor.bytes; ++i)
    sum += tensor.data[i];
  return sum;
}

/// A valid shard holding "a" (F32 [2]): what an index may point at.
void writeShard(const std::string &dir) {
  static const char kShard[] =
      "\x34\x00\x00\x00\x00\x00\x00\x00"
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
      "\x00\x00\x80\x3f\x00\x00\x00\x40";
  std::string path = dir + "/model-00001-of-00001.safetensors";
  if (!std::filesystem::exists(path))
    moec::fuzz::writeInput("checkpoint/model-00001-of-00001.safetensors",
                           reinterpret_cast<const uint8_t *>(kShard),
                           sizeof(kShard) - 1);
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  volatile uint64_t sink = 0;
  if (size > 0 && data[0] == '{') {
    std::string dir = moec::fuzz::scratchDir() + "/checkpoint";
    std::filesystem::create_directories(dir);
    writeShard(dir);
    moec::fuzz::writeInput("checkpoint/model.safetensors.index.json", data,
                           size);
    absl::StatusOr<moert::HfCheckpoint> checkpoint =
        moert::HfCheckpoint::open(dir);
    if (checkpoint.ok())
      for (const std::string &name : checkpoint->names())
        if (const moert::TensorView *tensor = checkpoint->find(name))
          sink = sink + touch(*tensor);
    return 0;
  }
  std::string path = moec::fuzz::writeInput("input.safetensors", data, size);
  absl::StatusOr<moert::SafetensorsFile> file =
      moert::SafetensorsFile::open(path);
  if (file.ok())
    for (const moert::TensorView &tensor : *file)
      sink = sink + touch(tensor);
  return 0;
}
