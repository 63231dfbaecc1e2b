"""Prints the largest absolute difference between the F32 tensor `logits`
of two safetensors files of the same shape (fails on different shapes)."""
import array
import json
import struct
import sys


def logits(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        entry = json.loads(f.read(length))["logits"]
        begin, end = entry["data_offsets"]
        f.seek(8 + length + begin)
        values = array.array("f")
        values.frombytes(f.read(end - begin))
    return entry["shape"], values


(shape_a, a), (shape_b, b) = logits(sys.argv[1]), logits(sys.argv[2])
if shape_a != shape_b:
    sys.exit(f"shapes differ: {shape_a} and {shape_b}")
print(f"max_abs_diff: {max(abs(x - y) for x, y in zip(a, b)):.3g}")
