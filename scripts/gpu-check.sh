#!/usr/bin/env bash
# Proves the GPU path from a bundle made by scripts/gpu-bundle.sh, on the
# GPU machine, installing nothing: every GPU test, the GPU benchmarks
# against the dense GEMM rate and PyTorch on the device, then a summary.
# Under 8 minutes on one H100/H200. Logs and the summary go to $OUT when it
# is set (the device tool brings them back), else to the bundle's log/.
#
# usage: BUNDLE/scripts/gpu-check.sh [--quick]   (--quick: small benchmark shapes)
set -uo pipefail
bundle=$(cd "$(dirname "$0")/.." && pwd)
logs=${OUT:-$bundle/log}
mkdir -p "$logs"
quick=()
python=${PYTHON:-python3} # the machine's, with PyTorch and transformers
[ "${1:-}" = "--quick" ] && quick=(--quick)

# cuBLAS/cuBLASLt 13 of the machine: the toolkit's, else PyTorch's wheels.
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $("$python" -c 'import nvidia.cublas, os; print(os.path.join(os.path.dirname(nvidia.cublas.__file__), "lib"))' 2> /dev/null); do
  if [ -e "$dir/libcublasLt.so.13" ]; then
    export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    break
  fi
done

summary="$logs/summary.txt"
: > "$summary"
failed=0
# step NAME SECONDS COMMAND...: runs it with a time limit, logs it, records
# PASS or FAIL (77 is a skip).
step() {
  local name=$1 seconds=$2
  shift 2
  local start=$SECONDS
  timeout "$seconds" "$@" > "$logs/$name.log" 2>&1
  local rc=$?
  local verdict=PASS
  # 77, or a gtest run whose every test skipped, is a skip.
  if [ $rc = 77 ] || grep -q "^\[  PASSED  \] 0 tests" "$logs/$name.log"; then
    verdict=SKIP
  elif [ $rc != 0 ]; then verdict="FAIL (exit $rc)"; failed=1; fi
  echo "$verdict: $name ($((SECONDS - start)) s)" | tee -a "$summary"
}

{
  echo "bundle: $(cat "$bundle/COMMIT" 2> /dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  "$bundle/bin/moe-run" devices 2>&1
} | tee -a "$summary"

cd "$bundle"
step cuda-math-tests 60 bin/moert-cuda-math-tests
step cuda-kernel-tests 120 bin/moert-cuda-tests
step e2e-cuda-reference 150 "$python" tests/e2e/test_cuda.py check bin work
step cuda-moe-bench 210 bin/cuda_moe_bench --repeat 10 "${quick[@]}"
step torch-moe-bench 120 "$python" tests/bench/torch_moe_layer_cuda.py --repeat 10 "${quick[@]}"
step train-step-bench 120 "$python" tests/bench/cuda_train_step.py bin \
  work/bench/train-8x152m.moex work/bench/batch.txt

{
  echo "--- failures"
  grep -h -E "^\[  FAILED  \]" "$logs"/cuda-*tests.log 2> /dev/null | sort -u
  grep -h -E "PASS|FAIL|SKIP" "$logs/e2e-cuda-reference.log" 2> /dev/null | tail -n 40
  echo "--- benchmarks"
  grep -h -E "^(gpu|dense|moe_|torch_|train_step)" "$logs/cuda-moe-bench.log" \
    "$logs/torch-moe-bench.log" "$logs/train-step-bench.log" 2> /dev/null
} | tee -a "$summary"
exit $failed
