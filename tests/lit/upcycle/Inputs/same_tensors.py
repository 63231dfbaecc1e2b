"""Checks that a sharded checkpoint directory holds exactly the tensors of an
unsharded one, laid out as transformers' save_pretrained shards: files
model-0000i-of-0000N.safetensors, none holding more than MAX_BYTES of tensor
data unless it holds a single tensor, and model.safetensors.index.json mapping every tensor to its file with the
total size.

usage: same_tensors.py SINGLE_DIR SHARDED_DIR MAX_BYTES
Prints `same tensors in N shards`, or what differs (exit 1).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "reference"))
import safetensors_io  # noqa: E402

single_dir, sharded_dir, max_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
single = safetensors_io.read(os.path.join(single_dir, "model.safetensors"))
with open(os.path.join(sharded_dir, "model.safetensors.index.json")) as f:
    index = json.load(f)
files = sorted(set(index["weight_map"].values()))
problems = []
if files != [f"model-{i:05d}-of-{len(files):05d}.safetensors" for i in range(1, len(files) + 1)]:
    problems.append(f"shard names {files}")
if os.path.exists(os.path.join(sharded_dir, "model.safetensors")):
    problems.append("model.safetensors next to the shards")
order, total = [], 0
for name in files:
    shard = safetensors_io.read(os.path.join(sharded_dir, name))
    size = sum(t.numel() * t.element_size() for t in shard.values())
    total += size
    if size > max_bytes and len(shard) > 1:
        problems.append(f"{name}: {size} bytes in {len(shard)} tensors")
    for tensor_name, tensor in shard.items():
        order.append(tensor_name)
        if index["weight_map"].get(tensor_name) != name:
            problems.append(f"{tensor_name}: in {name}, index says {index['weight_map'].get(tensor_name)}")
        if tensor_name not in single or not single[tensor_name].equal(tensor) \
                or single[tensor_name].dtype != tensor.dtype:
            problems.append(f"{tensor_name}: differs from the single file")
if sorted(order) != sorted(single.keys()):
    problems.append("tensors missing or extra")
if index["metadata"]["total_size"] != total:
    problems.append(f"total_size {index['metadata']['total_size']}, shards hold {total}")
for problem in problems:
    print("FAIL:", problem)
print(f"same tensors in {len(files)} shards" if not problems else f"{len(problems)} problems")
sys.exit(1 if problems else 0)
