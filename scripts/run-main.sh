#!/usr/bin/env bash
# The main job, end to end on the CPU: build, import the Drop-Upcycling
# paper's 8x1.5B MoE and the tiny test MoE from models/, and show their
# structure and statistics. Outputs go to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh > /dev/null
bin=${BUILD_DIR:-build}/bin
mkdir -p out

for model in drop-upcycling-8x1.5b tiny-mixtral; do
  echo "== $model"
  "$bin/moec" import "models/$model" -o "out/$model.mlir"
  echo "imported: out/$model.mlir ($(grep -c 'moe.param' "out/$model.mlir") parameters)"
  echo "-- structure (ops in @forward)"
  "$bin/moe-opt" "out/$model.mlir" --print-op-stats -o /dev/null 2>&1 |
    grep -E '^ +(moe|func)\.' | sort -t, -k2 -rn
  echo "-- statistics"
  "$bin/moec" stats "out/$model.mlir"
done

echo "== compile and run tiny-mixtral on the CPU"
"$bin/moec" compile models/tiny-mixtral -o out/tiny-mixtral.moex --batch 2 --seq 32
printf '%s\n' "72 101 108 108 111 44 32 119 111 114 108 100" \
              "77 105 120 116 117 114 101 32 111 102 32 101 120 112 101 114 116 115" \
  > out/tokens.txt
"$bin/moe-run" out/tiny-mixtral.moex --seed 1234 --tokens out/tokens.txt \
  --logits-out out/tiny-mixtral.logits.safetensors --repeat 10 \
  --save-weights out/tiny-mixtral-random

echo "== Drop-Upcycling: a dense tiny Llama into an 8-expert Mixtral, then run it"
"$bin/moec" compile models/tiny-llama -o out/tiny-llama.moex --batch 2 --seq 32 > /dev/null
"$bin/moe-run" out/tiny-llama.moex --seed 1234 --save-weights out/tiny-llama-dense \
  --tokens out/tokens.txt
rm -rf out/tiny-llama-upcycled
"$bin/moec" upcycle out/tiny-llama-dense -o out/tiny-llama-upcycled \
  --experts 8 --top-k 2 --method drop --ratio 0.5 --seed 1234
"$bin/moec" stats out/tiny-llama-upcycled --seq-len 32 | grep -E "experts|params"
"$bin/moec" compile out/tiny-llama-upcycled -o out/tiny-llama-upcycled.moex --batch 2 --seq 32 > /dev/null
"$bin/moe-run" out/tiny-llama-upcycled.moex --weights out/tiny-llama-upcycled \
  --tokens out/tokens.txt
