"""Minimal safetensors reader and writer, written here because Debian ships
no `safetensors` package.

The format: an 8-byte little-endian unsigned header length N, N bytes of
JSON header `{name: {"dtype", "shape", "data_offsets": [begin, end]},
"__metadata__": {str: str}}` (padded with spaces to a multiple of 8), then
the raw little-endian tensor data; offsets are relative to the data start.

    read(path) -> {name: torch.Tensor}        (bf16 comes back as bfloat16)
    read_header(path) -> (header dict, data start offset)
    write(path, {name: tensor}, metadata=None) (atomic: temp file + rename)

Every malformed file raises ValueError (OSError when it cannot be read).
"""
import json
import os
import struct

import numpy as np
import torch

# safetensors dtype -> (numpy dtype of the raw bits, torch dtype)
_DTYPES = {
    "F64": (np.dtype("<f8"), torch.float64),
    "F32": (np.dtype("<f4"), torch.float32),
    "F16": (np.dtype("<f2"), torch.float16),
    "BF16": (np.dtype("<i2"), torch.bfloat16),  # the bits, viewed as bf16
    "I64": (np.dtype("<i8"), torch.int64),
    "I32": (np.dtype("<i4"), torch.int32),
}
_NAMES = {torch_dtype: name for name, (_, torch_dtype) in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def read_header(path):
    """Returns (header, data_start) after checking the header's structure."""
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > _MAX_HEADER:
            raise ValueError(f"{path}: header length {length} is implausible")
        text = f.read(length)
    if len(text) != length:
        raise ValueError(f"{path}: header truncated")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if (not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES
                or not isinstance(entry.get("shape"), list)
                or not isinstance(entry.get("data_offsets"), list)
                or len(entry["data_offsets"]) != 2):
            raise ValueError(f"{path}: bad or unsupported entry for {name!r}: {entry}")
    return header, 8 + length


def read(path):
    """Returns {name: tensor} in header order."""
    header, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        numpy_dtype, torch_dtype = _DTYPES[entry["dtype"]]
        shape = entry["shape"]
        begin, end = entry["data_offsets"]
        count = 1
        for dim in shape:
            if not isinstance(dim, int) or dim < 0:
                raise ValueError(f"{path}: {name!r} has a bad shape {shape}")
            count *= dim
        if not (0 <= begin <= end <= len(data)) or end - begin != count * numpy_dtype.itemsize:
            raise ValueError(f"{path}: {name!r} has bad data_offsets {entry['data_offsets']} "
                             f"for {entry['dtype']} {shape} ({len(data)} data bytes)")
        array = np.frombuffer(data, dtype=numpy_dtype, count=count, offset=begin)
        array = array.astype(numpy_dtype.newbyteorder("="), copy=True).reshape(shape)
        tensor = torch.from_numpy(array)
        if torch_dtype == torch.bfloat16:
            tensor = tensor.view(torch.bfloat16)
        tensors[name] = tensor
    return tensors


def _bytes(tensor):
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        array = tensor.view(torch.int16).numpy()
    else:
        array = tensor.numpy()
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def write(path, tensors, metadata=None):
    """Writes {name: tensor} in insertion order, to a temporary name in the
    same directory renamed over `path` once complete."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, tensor in tensors.items():
        if tensor.dtype not in _NAMES:
            raise ValueError(f"{name}: unsupported dtype {tensor.dtype}")
        blob = _bytes(tensor)
        header[name] = {"dtype": _NAMES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        chunks.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for blob in chunks:
                f.write(blob)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
