#!/usr/bin/env bash
# Benchmarks, each against its baseline measured in the same run (medians):
#  1. one MoE layer forward (E=8, top-2, d=512, ffn=1408, 4096 tokens), fp32
#     and bf16: moec's CPU kernels vs the PyTorch eager loop a user writes,
#     next to oneDNN's plain GEMM rate on this machine;
#  2. the tiny MoE's whole forward: moe-run vs the PyTorch reference model;
#  3. training throughput of a tiny MoE (4 layers, d=256, 8 experts top-2,
#     batch 4 x seq 256), fp32 and bf16: moe-run train vs a PyTorch eager
#     training loop of the same model (tests/bench/train_bench.py).
# PyTorch runs on 2 threads with OpenBLAS (installed here if missing: Debian's
# default reference BLAS would make the baseline ~100x slower and the ratio
# meaningless) and without the OPENBLAS_CORETYPE override of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh > /dev/null
bin=${BUILD_DIR:-build}/bin
if ! dpkg-query -W -f='${Status}' libopenblas0-openmp 2>/dev/null | grep -q "ok installed"; then
  apt-get install -y -qq libopenblas0-openmp > /dev/null
fi
torch() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$@"; }
value() { grep "^$1:" | awk '{print $2}'; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
repeat=${REPEAT:-20}

echo "== MoE layer forward: E=8 top-2 d=512 ffn=1408, 4096 tokens, $OMP_NUM_THREADS threads"
for dtype in f32 bf16; do
  ours=$("$bin/moe_layer_bench" --dtype $dtype --repeat "$repeat")
  theirs=$(torch tests/bench/torch_moe_layer.py --dtype $dtype --repeat "$repeat" --threads "$OMP_NUM_THREADS")
  ms=$(echo "$ours" | value moe_layer_ms_median)
  torch_ms=$(echo "$theirs" | value torch_moe_layer_ms_median)
  echo "$dtype: moec ${ms} ms ($(echo "$ours" | value moe_layer_gflops) GFLOP/s)," \
       "pytorch eager ${torch_ms} ms ($(echo "$theirs" | value torch_moe_layer_gflops) GFLOP/s)," \
       "speedup $(echo "$torch_ms $ms" | awk '{printf "%.2f", $1 / $2}')x;" \
       "oneDNN GEMM alone $(echo "$ours" | value onednn_gemm_gflops) GFLOP/s"
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
