"""Prints whether every fp32 tensor of a safetensors file is finite.

usage: finite.py FILE.safetensors
"""
import json
import math
import struct
import sys

with open(sys.argv[1], "rb") as f:
    data = f.read()
(length,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + length])
body = data[8 + length:]
finite = True
for name, tensor in header.items():
    if name == "__metadata__" or tensor["dtype"] != "F32":
        continue
    begin, end = tensor["data_offsets"]
    values = struct.unpack(f"<{(end - begin) // 4}f", body[begin:end])
    finite = finite and all(math.isfinite(v) for v in values)
print("finite" if finite else "not finite")
