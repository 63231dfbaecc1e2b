#!/usr/bin/env bash
# Installs what is missing, configures and builds moec (Release, Ninja, lld).
# BUILD_DIR selects the build directory (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${BUILD_DIR:-build}
cmake -G Ninja -S . -B "$build" \
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
  -DLLVM_USE_LINKER=lld \
  -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit
cmake --build "$build" -j "$(nproc)"
