"""Minimal safetensors reader and writer (the format: 8-byte little-endian
header length, a JSON header padded with spaces to a multiple of 8, then the
raw little-endian tensor data). Written here because Debian ships no
`safetensors` package."""
import json
import os
import struct

import numpy as np
import torch

_TO_NUMPY = {"F32": np.float32, "F16": np.float16, "I32": np.int32,
             "I64": np.int64, "BF16": np.uint16}
_DTYPE_NAME = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16",
               torch.int32: "I32", torch.int64: "I64"}


def read(path):
    """Returns {name: torch tensor} (bf16 tensors come back as bfloat16)."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=_TO_NUMPY[entry["dtype"]])
        array = array.reshape(entry["shape"]).copy()
        tensor = torch.from_numpy(array)
        if entry["dtype"] == "BF16":
            tensor = tensor.view(torch.int16).view(torch.bfloat16)
        tensors[name] = tensor
    return tensors


def write(path, tensors, metadata=None):
    """Writes {name: tensor} in insertion order, atomically."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, tensor in tensors.items():
        tensor = tensor.contiguous()
        if tensor.dtype == torch.bfloat16:
            blob = tensor.view(torch.int16).numpy().tobytes()
        else:
            blob = tensor.numpy().tobytes()
        header[name] = {"dtype": _DTYPE_NAME[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        chunks.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in chunks:
            f.write(blob)
    os.replace(temporary, path)
