#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# with ctest (lit for the tools, gtest units, the PyTorch end-to-end
# comparison, generated-docs freshness); then builds the runtime alone with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs its tests again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"

asan=${ASAN_BUILD_DIR:-build-asan}
cmake -G Ninja -S . -B "$asan" -DMOEC_BUILD_COMPILER=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build "$asan" -j "$(nproc)" \
  --target moert-tests moert-checkpoint-tests moert-cpu-kernels-tests \
  moert-data-tests moe-data moert-train-tests fuzz-replay-safetensors \
  fuzz-replay-artifact fuzz-replay-tokens fuzz-replay-sentencepiece
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$asan" --output-on-failure -j "$(nproc)"
