#!/usr/bin/env bash
# Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/NAME) from
# the tools of a build: small valid inputs of every kind each target reads,
# which the fuzzer mutates. Usage: tests/fuzz/make_corpus.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
corpus=tests/fuzz/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p $corpus/{safetensors,artifact,tokens,sentencepiece,config}

# Configs: every model moec ships.
for model in models/*/; do
  cp "$model/config.json" "$corpus/config/$(basename "$model").json"
done

# Artifacts: inference and training, dense and MoE, fused and not.
"$bin/moec" compile models/tiny-mixtral -o $corpus/artifact/mixtral.moex --batch 1 --seq 4 > /dev/null
"$bin/moec" compile models/tiny-mixtral -o $corpus/artifact/mixtral-train.moex --batch 1 --seq 4 --mode train > /dev/null
"$bin/moec" compile models/tiny-llama -o $corpus/artifact/llama-no-fuse.moex --batch 2 --seq 3 --no-fuse > /dev/null
# Generation programs (KV caches) and the newer families' ops.
"$bin/moec" compile models/tiny-mixtral -o $corpus/artifact/mixtral-generate.moex --mode generate --batch 2 --seq 8 > /dev/null
"$bin/moec" compile models/tiny-qwen2-moe -o $corpus/artifact/qwen2-moe-train.moex --batch 1 --seq 4 --mode train > /dev/null
"$bin/moec" compile models/tiny-olmoe -o $corpus/artifact/olmoe.moex --batch 1 --seq 4 > /dev/null

# Safetensors: a few tensors of each dtype, with metadata; a shard index.
/usr/bin/python3 - "$corpus/safetensors" <<'PY'
import json, struct, sys
out = sys.argv[1]
def write(name, tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for key, dtype, shape, raw in tensors:
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    with open(f"{out}/{name}", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
write("mixed.safetensors", [("a.weight", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
                            ("b", "BF16", [3], b"\x80\x3f" * 3),
                            ("c", "F16", [1, 1], b"\x00\x3c"),
                            ("empty", "F32", [0, 4], b"")], {"format": "pt"})
write("one.safetensors", [("x", "F32", [1], struct.pack("<f", 0.5))])
with open(f"{out}/index.json", "w") as f:
    json.dump({"metadata": {"total_size": 8},
               "weight_map": {"a": "model-00001-of-00001.safetensors"}}, f)
PY

# Token files (first byte 0: a .tok file; 1: text lines).
printf 'Call me Ishmael.\n\nSome years ago, never mind how long.\n' > "$work/text.txt"
"$bin/moe-data" encode --tokenizer bytes --input "$work/text.txt" --out "$work/bytes.tok" > /dev/null
{ printf '\x00'; cat "$work/bytes.tok"; } > $corpus/tokens/bytes.tok
{ printf '\x01'; printf '1 2 3\n4 5\n\n299 0 7 7 7\n'; } > $corpus/tokens/lines.txt

# SentencePiece: a small BPE model.
for i in $(seq 1 40); do cat "$work/text.txt"; done > "$work/corpus.txt"
"$bin/moe-data" train-tokenizer --input "$work/corpus.txt" --vocab-size 60 --out "$work/spm" > /dev/null
cp "$work/spm.model" $corpus/sentencepiece/bpe.model
du -sh $corpus/*
