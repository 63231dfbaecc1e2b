//===- Scratch.cpp - per-thread working memory kept across calls ----------===//

#include "runtime/cpu/Scratch.h"

namespace moert::cpu {

ScratchBuffer::~ScratchBuffer() {
  ::operator delete[](data, std::align_val_t(64));
}

} // namespace moert::cpu
