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
