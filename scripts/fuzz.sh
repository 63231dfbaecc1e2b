#!/usr/bin/env bash
# Fuzzes every loader target for SECONDS each (default 60): builds the
# runtime and the compiler's import with clang, libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer in build-fuzz, runs each fuzz-NAME on a copy of its seed corpus
# (tests/fuzz/corpus/NAME) with its dictionary, and prints executions per
# second and coverage. A crash fails the script; its input is kept under
# build-fuzz/crashes/NAME, to be added to tests/fuzz/regressions/NAME once
# fixed (fuzz-replay-NAME then replays it in every test run).
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
dir=${FUZZ_BUILD_DIR:-build-fuzz}
# dpkg-query -W also lists packages that are known but not installed, so
# the status is what is checked.
installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }
if ! command -v clang++-22 > /dev/null || ! installed libomp-22-dev ||
   ! installed libclang-rt-22-dev; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends clang-22 libclang-rt-22-dev libomp-22-dev > /dev/null
fi
# Warnings stay errors in the gcc build. Here clang flags libstdc++ 12's
# internals (deprecated get_temporary_buffer) and omp simd loops that the
# instrumentation keeps from vectorizing: neither is about our code.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
flags+=" -Wno-deprecated-declarations -Wno-pass-failed"
# LLVM_USE_SANITIZER: shared libraries leave the sanitizers' symbols to the
# executable (no -z defs).
cmake -G Ninja -S . -B "$dir" -DMOEC_FUZZ=ON -DMOEC_WERROR=OFF -DMOEC_CUDA=OFF -DLLVM_USE_LINKER=lld \
  -DLLVM_USE_SANITIZER=Address \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
targets=(safetensors artifact tokens sentencepiece config)
cmake --build "$dir" -j "$(nproc)" --target "${targets[@]/#/fuzz-}"

status=0
for name in "${targets[@]}"; do
  work="$dir/fuzz-work/$name"
  rm -rf "$work" && mkdir -p "$work/corpus" "$dir/crashes/$name"
  cp tests/fuzz/corpus/$name/* "$work/corpus/"
  dict=tests/fuzz/$name.dict
  # Large allocations fail as statuses, as they must, rather than abort ASan.
  # allow_user_poisoning=0: LLVM's BumpPtrAllocator poisons a slab's free
  # space when inlined into our instrumented code, and Debian's
  # uninstrumented libMLIR then allocates from that slab without unpoisoning
  # it: a false use-after-poison (config fuzzing hit it, dependent on the
  # allocator's state; the input replays cleanly alone).
  if ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:allow_user_poisoning=0 \
     "$dir/bin/fuzz-$name" "$work/corpus" -max_total_time="$seconds" -timeout=20 \
       -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$dir/crashes/$name/" \
       $( [[ -f $dict ]] && echo "-dict=$dict" ) > "$work/log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
  fi
  execs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$work/log" | grep -o '[0-9]*$' || true)
  cov=$(grep -oE '(DONE|#[0-9]+).*cov: [0-9]+ ft: [0-9]+' "$work/log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  echo "fuzz-$name: $result, ${seconds}s, ${execs:-?} exec/s, ${cov:-no coverage line}, corpus $(ls "$work/corpus" | wc -l) inputs"
  [[ $result == ok ]] || grep -E "ERROR|SUMMARY|==[0-9]+==" "$work/log" | head -5
done
exit $status
