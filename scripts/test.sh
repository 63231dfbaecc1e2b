#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# with ctest (lit for the tools, gtest units, the PyTorch end-to-end
# comparison, generated-docs freshness); then builds the runtime alone with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs its tests again,
# and the tool tests of moe-run (inference, training, profiling) and
# moe-data with those builds of the tools; then ThreadSanitizer over the
# OpenMP kernels (scripts/tsan.sh) and every fuzz target for FUZZ_SECONDS
# each (default 60; scripts/fuzz.sh; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"

asan=${ASAN_BUILD_DIR:-build-asan}
cmake -G Ninja -S . -B "$asan" -DMOEC_BUILD_COMPILER=OFF -DMOEC_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build "$asan" -j "$(nproc)" \
  --target moert-tests moert-checkpoint-tests moert-cpu-kernels-tests \
  moert-data-tests moert-generate-tests moe-data moe-run moert-train-tests \
  moert-cuda-math-tests \
  fuzz-replay-safetensors fuzz-replay-artifact fuzz-replay-tokens \
  fuzz-replay-sentencepiece
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$asan" --output-on-failure -j "$(nproc)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  /usr/lib/llvm-22/bin/lit -q --param runtime_tools_dir="$(cd "$asan" && pwd)/bin" \
  "${BUILD_DIR:-build}/tests/lit/moe-run" "${BUILD_DIR:-build}/tests/lit/train" \
  "${BUILD_DIR:-build}/tests/lit/generate" \
  "${BUILD_DIR:-build}/tests/lit/profile" "${BUILD_DIR:-build}/tests/lit/data"
scripts/tsan.sh
fuzz_seconds=${FUZZ_SECONDS:-60}
[[ $fuzz_seconds == 0 ]] || scripts/fuzz.sh "$fuzz_seconds"
