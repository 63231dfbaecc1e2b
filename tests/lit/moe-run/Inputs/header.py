"""Prints `name dtype shape` for every tensor of a safetensors file, sorted."""
import json
import struct
import sys

with open(sys.argv[1], "rb") as f:
    (length,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(length))
for name in sorted(k for k in header if k != "__metadata__"):
    print(name, header[name]["dtype"], header[name]["shape"])
