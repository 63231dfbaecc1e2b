"""Copies a one-file checkpoint directory, breaking it in one named way:
drop NAME | add NAME | reshape NAME | dtype NAME | i32 NAME | bf16 NAME |
length. A last argument names the safetensors file in the directory to break
(model.safetensors unless given, e.g. optimizer.safetensors)."""
import json
import os
import shutil
import struct
import sys

source, target, how = sys.argv[1], sys.argv[2], sys.argv[3]
name = sys.argv[4] if len(sys.argv) > 4 else None
file = sys.argv[5] if len(sys.argv) > 5 else "model.safetensors"
shutil.rmtree(target, ignore_errors=True)
shutil.copytree(source, target)
path = os.path.join(target, file)
with open(path, "rb") as f:
    raw = f.read()
(length,) = struct.unpack("<Q", raw[:8])
header, data = json.loads(raw[8:8 + length]), raw[8 + length:]

if how == "drop":
    del header[name]
elif how == "add":
    header[name] = {"dtype": "F32", "shape": [0], "data_offsets": [len(data), len(data)]}
elif how == "reshape":
    header[name]["shape"] = [2, header[name]["shape"][0] // 2]
elif how == "dtype":
    header[name]["dtype"] = "F64"
    header[name]["shape"] = [header[name]["shape"][0] // 2]
elif how == "i32":  # same bytes, not a float
    header[name]["dtype"] = "I32"
elif how == "bf16":  # same bytes, twice the elements of a 1-d tensor
    header[name]["dtype"] = "BF16"
    header[name]["shape"] = [header[name]["shape"][0] * 2]

text = json.dumps(header).encode()
text += b" " * ((8 - len(text) % 8) % 8)
prefix = struct.pack("<Q", len(text) + (1 << 20 if how == "length" else 0))
with open(path, "wb") as f:
    f.write(prefix + text + data)
