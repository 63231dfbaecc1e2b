#!/usr/bin/env bash
# Builds the self-contained bundle that proves the GPU path on a machine
# with the NVIDIA driver, CUDA 13 and Python (PyTorch, transformers) but none
# of our other dependencies and no package registry:
#   bin/    moe-run and the GPU test and benchmark programs, found their
#           libraries through an rpath of $ORIGIN/../lib
#   lib/    every shared library they need beyond glibc, libstdc++ and
#           CUDA's own (cuBLAS/cuBLASLt come from the GPU machine)
#   work/   the e2e artifacts, compiled here by moec, with their fixtures
#   tests/  the Python halves of the checks; scripts/gpu-check.sh runs it all
# It travels as OUT_DIR.tar.gz, at most 60 MiB. Run after scripts/build.sh.
# There: mkdir b && tar xzf gpu-bundle.tar.gz -C b && b/scripts/gpu-check.sh
#
# usage: scripts/gpu-bundle.sh [OUT_DIR]    (default: build/gpu-bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
out=${1:-$build/gpu-bundle}
limit_mib=60

if ! grep -q "^MOEC_HAVE_CUDA:.*=ON" "$build/CMakeCache.txt" 2>/dev/null &&
   ! grep -q "CUDA backend: ON" "$build/CMakeFiles/CMakeOutput.log" 2>/dev/null; then
  [ -x "$build/bin/moert-cuda-tests" ] || {
    echo "gpu-bundle: $build has no CUDA backend (configure where /usr/local/cuda is)" >&2
    exit 1
  }
fi
command -v patchelf > /dev/null || {
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq patchelf > /dev/null
  else sudo apt-get install -y -qq patchelf > /dev/null; fi
}
programs=(moe-run moert-cuda-tests moert-cuda-math-tests cuda_moe_bench)
cmake --build "$build" --target "${programs[@]}" moec

rm -rf "$out" "$out.tmp" "$out.tar.gz"
mkdir -p "$out.tmp"/{bin,lib,scripts,tests/e2e,tests/reference,tests/bench}
for program in "${programs[@]}"; do
  cp "$build/bin/$program" "$out.tmp/bin/"
  strip --strip-unneeded "$out.tmp/bin/$program"
done

# Libraries: what ldd resolves here, less the C runtime and CUDA's own.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libstdc\+\+|libcuda\.|libcudart|libcublas|libnccl)'
for program in "${programs[@]}"; do
  ldd "$out.tmp/bin/$program" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ ! "$name" =~ $skip ]]; then
    cp -L "$path" "$out.tmp/lib/$name"
    chmod u+w "$out.tmp/lib/$name"
    strip --strip-unneeded "$out.tmp/lib/$name" 2> /dev/null || true
  fi
done
for program in "$out.tmp"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$program"; done
for library in "$out.tmp"/lib/*; do patchelf --set-rpath '$ORIGIN' "$library"; done

/usr/bin/python3 tests/e2e/test_cuda.py prepare "$build/bin" "$out.tmp/work" > /dev/null
# The training-step benchmark: the paper's 8x152M in bf16, a random batch.
mkdir -p "$out.tmp/work/bench"
"$build/bin/moec" compile models/drop-upcycling-8x152m --mode train --batch 4 \
  --seq 2048 --dtype bf16 -o "$out.tmp/work/bench/train-8x152m.moex" > /dev/null
/usr/bin/python3 -c 'import json, random, sys
vocab = json.load(open("models/drop-upcycling-8x152m/config.json"))["vocab_size"]
rng = random.Random(1)
sys.stdout.write("".join(" ".join(str(rng.randrange(vocab)) for _ in range(2049)) + "\n"
                         for _ in range(4)))' > "$out.tmp/work/bench/batch.txt"
cp tests/e2e/test_cuda.py tests/e2e/test_generate.py tests/e2e/test_training.py tests/e2e/e2e_util.py "$out.tmp/tests/e2e/"
cp tests/reference/*.py "$out.tmp/tests/reference/"
cp tests/bench/torch_moe_layer.py tests/bench/torch_moe_layer_cuda.py \
  tests/bench/cuda_train_step.py "$out.tmp/tests/bench/"
cp scripts/gpu-check.sh "$out.tmp/scripts/"
git rev-parse HEAD > "$out.tmp/COMMIT" 2> /dev/null || true

tar -czf "$out.tar.gz.tmp" -C "$out.tmp" .
size_kib=$(( $(stat -c %s "$out.tar.gz.tmp") / 1024 ))
if [ "$size_kib" -gt $((limit_mib * 1024)) ]; then
  rm -f "$out.tar.gz.tmp"
  echo "gpu-bundle: $((size_kib / 1024)) MiB, over the limit of $limit_mib MiB" >&2
  du -sk "$out.tmp"/* | sort -rn | head >&2
  exit 1
fi
mv "$out.tmp" "$out"
mv "$out.tar.gz.tmp" "$out.tar.gz"
echo "gpu-bundle: $out.tar.gz ($((size_kib / 1024)) MiB, $out unpacked);" \
  "on the GPU machine: tar xzf it into a directory, run its scripts/gpu-check.sh"
