#!/usr/bin/env bash
# ThreadSanitizer over the OpenMP kernels: builds the runtime with clang and
# LLVM's OpenMP runtime (libomp, whose Archer tool tells TSan about OpenMP's
# barriers, locks and tasks) in build-tsan and runs the CPU kernels' tests
# (forward and backward, each at several thread counts) and the trainer's.
# oneDNN is not instrumented: its own accesses are invisible to TSan, and
# its GOMP calls bind to libomp, so the threads it runs are ones Archer sees.
# tests/tsan/suppressions.txt lists what is suppressed, each with its reason;
# tests/tsan/race_probe.cpp proves first that a real race is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${TSAN_BUILD_DIR:-build-tsan}
# libclang-rt-22-dev holds the sanitizer runtimes (libclang_rt.tsan.a); clang
# does not pull it in without recommends.
# dpkg-query -W also lists packages that are known but not installed, so
# the status is what is checked.
installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }
if ! command -v clang++-22 > /dev/null || ! installed libomp-22-dev ||
   ! installed libclang-rt-22-dev; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends clang-22 libomp-22-dev \
    libclang-rt-22-dev > /dev/null
fi
# clang flags libstdc++ 12's internals (deprecated get_temporary_buffer) and
# omp simd loops the instrumentation keeps from vectorizing: not our code.
quiet="-Wno-deprecated-declarations -Wno-pass-failed"
cmake -G Ninja -S . -B "$dir" -DMOEC_BUILD_COMPILER=OFF -DMOEC_WERROR=OFF -DMOEC_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer $quiet" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" > /dev/null
cmake --build "$dir" -j "$(nproc)" --target moert-cpu-kernels-tests moert-train-tests
export OMP_TOOL_LIBRARIES=/usr/lib/llvm-22/lib/libarcher.so
# Accesses made inside libomp and oneDNN (not instrumented) are not ours to
# check; Archer reports their synchronisation instead.
export TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1 suppressions=$PWD/tests/tsan/suppressions.txt"
clang++-22 -fsanitize=thread -fopenmp -g tests/tsan/race_probe.cpp -o "$dir/race_probe"
if OMP_NUM_THREADS=2 TSAN_OPTIONS="$TSAN_OPTIONS exitcode=66" "$dir/race_probe" > /dev/null 2>&1 ||
   [[ $? != 66 ]]; then
  echo "tsan.sh: ThreadSanitizer missed the race in tests/tsan/race_probe.cpp" >&2
  exit 1
fi
"$dir/bin/moert-cpu-kernels-tests" --gtest_brief=1
"$dir/bin/moert-train-tests" --gtest_brief=1
