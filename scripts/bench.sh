#!/usr/bin/env bash
# Benchmarks, each against its baseline measured in the same run (medians):
#  1. one MoE layer (E=8, top-2, d=512, ffn=1408) at 16 to 4096 tokens, fp32
#     and bf16, forward and forward + backward: the fused kernels (the forward
#     over repacked weights as inference runs it, and in place), the unfused
#     chain (--no-fuse) and the PyTorch eager loop a user writes, next to
#     oneDNN's plain GEMM rate and the weight-streaming bound (the active
#     experts' weight bytes over the triad bandwidth) on this machine;
#  2. the tiny MoE's whole forward: moe-run vs the PyTorch reference model;
#  3. training throughput of a tiny MoE (4 layers, d=256, 8 experts top-2,
#     batch 4 x seq 256), fp32 and bf16: moe-run train vs a PyTorch eager
#     training loop of the same model (tests/bench/train_bench.py);
#  4. decode speed of moe-run generate on the paper's 8x152M shape at batch
#     1 and 8, bf16 and fp32, against the weight bytes a step reads over the
#     read bandwidth, and against a PyTorch eager decode loop with a KV
#     cache (tests/bench/decode_bench.py);
#  5. what profiling costs on that training benchmark (--trace, --profile
#     against no flag), and its trace's top kernels against the ceilings
#     (tests/bench/profile_overhead.py; BASELINE_BIN adds a moe-run built
#     without the profiler);
#  6. expert parallelism: that training benchmark on 1 process x 2 threads
#     against 2 processes x 1 thread (EP2, mpirun), with the time inside the
#     experts' exchanges (tests/bench/parallel_bench.py).
# PyTorch runs on 2 threads with OpenBLAS (installed here if missing: Debian's
# default reference BLAS would make the baseline ~100x slower and the ratio
# meaningless) and without the OPENBLAS_CORETYPE override of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh > /dev/null
bin=${BUILD_DIR:-build}/bin
if ! dpkg-query -W -f='${Status}' libopenblas0-openmp 2>/dev/null | grep -q "ok installed"; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get install -y -qq libopenblas0-openmp > /dev/null
fi
torch() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$@"; }
value() { grep "^$1:" | awk '{print $2}'; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
repeat=${REPEAT:-20}

echo "== MoE layer: E=8 top-2 d=512 ffn=1408, $OMP_NUM_THREADS threads (ms, medians)"
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1 / $2}'; }
for dtype in f32 bf16; do
  for tokens in ${MOE_TOKENS:-16 64 256 1024 4096}; do
    ours=$("$bin/moe_layer_bench" --dtype $dtype --tokens "$tokens" --repeat "$repeat")
    theirs=$(torch tests/bench/torch_moe_layer.py --dtype $dtype --tokens "$tokens" \
             --repeat "$repeat" --threads "$OMP_NUM_THREADS")
    theirs_train=$(torch tests/bench/torch_moe_layer.py --dtype $dtype --tokens "$tokens" \
                   --repeat "$repeat" --threads "$OMP_NUM_THREADS" --backward)
    fused=$(echo "$ours" | value fused_moe_layer_ms_median)
    unfused=$(echo "$ours" | value moe_layer_ms_median)
    in_place=$(echo "$ours" | value fused_unpacked_moe_layer_ms_median)
    torch_ms=$(echo "$theirs" | value torch_moe_layer_ms_median)
    bound=$(echo "$ours" | value weight_streaming_bound_ms)
    fused_train=$(echo "$ours" | value fused_moe_layer_train_ms_median)
    unfused_train=$(echo "$ours" | value moe_layer_train_ms_median)
    torch_train=$(echo "$theirs_train" | value torch_moe_layer_ms_median)
    echo "$dtype $tokens tokens: forward fused $fused (weights in place, as training: $in_place)," \
         "--no-fuse $unfused, pytorch $torch_ms" \
         "(fused: $(ratio "$torch_ms" "$fused")x pytorch, $(ratio "$unfused" "$fused")x --no-fuse," \
         "$(ratio "$fused" "$bound")x the streaming bound $bound ms at" \
         "$(echo "$ours" | value triad_gb_per_s) GB/s, $(echo "$ours" | value fused_moe_layer_gflops)" \
         "GFLOP/s vs oneDNN GEMM $(echo "$ours" | value onednn_gemm_gflops));" \
         "forward+backward fused $fused_train, --no-fuse $unfused_train, pytorch $torch_train" \
         "(fused: $(ratio "$torch_train" "$fused_train")x pytorch, $(ratio "$unfused_train" "$fused_train")x --no-fuse)"
  done
done

echo "== tiny-mixtral whole forward, batch 4 x seq 128"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin/moec" compile models/tiny-mixtral -o "$work/m.moex" --batch 4 --seq 128 > /dev/null
"$bin/moe-run" "$work/m.moex" --seed 1 --save-weights "$work/w" > /dev/null
torch -c "
import random
random.seed(0)
for _ in range(4): print(' '.join(str(random.randrange(256)) for _ in range(128)))
" > "$work/tokens.txt"
ms=$("$bin/moe-run" "$work/m.moex" --weights "$work/w" --tokens "$work/tokens.txt" --repeat "$repeat" | value forward_ms_median)
torch_ms=$(torch tests/bench/torch_forward.py "$work/w" "$work/tokens.txt" --repeat "$repeat" --threads "$OMP_NUM_THREADS" | value torch_forward_ms_median)
echo "moec ${ms} ms, pytorch eager ${torch_ms} ms, speedup $(echo "$torch_ms $ms" | awk '{printf "%.2f", $1 / $2}')x"

echo "== training: tiny MoE (4 layers, d=256, 8 experts top-2), batch 4 x seq 256"
for dtype in f32 bf16; do
  /usr/bin/python3 tests/bench/train_bench.py "$bin" --dtype $dtype \
    --threads "$OMP_NUM_THREADS" --steps "${TRAIN_STEPS:-30}" --rounds "${TRAIN_ROUNDS:-3}"
done

echo "== decode: 8x152M (random weights), prompt 16, 63 decode steps"
torch tests/bench/decode_bench.py "$bin" --threads "$OMP_NUM_THREADS" \
  --rounds "${DECODE_ROUNDS:-3}"

echo "== profiling: its cost on the training benchmark, and where a step goes"
mkdir -p out/profile
"$bin/moe-run" calibrate --force   # the ceilings of this run, not a cached one
for dtype in f32 bf16; do
  /usr/bin/python3 tests/bench/profile_overhead.py "$bin" --dtype $dtype \
    --threads "$OMP_NUM_THREADS" --rounds "${PROFILE_ROUNDS:-5}" --out out/profile \
    ${BASELINE_BIN:+--baseline-bin "$BASELINE_BIN"}
done

echo "== expert parallelism: the training benchmark on 1 x 2 threads vs EP2 (2 x 1 thread)"
/usr/bin/python3 tests/bench/parallel_bench.py "$bin" --rounds "${PARALLEL_ROUNDS:-3}"
