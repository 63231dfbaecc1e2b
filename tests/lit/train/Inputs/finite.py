"""Prints whether every floating-point tensor of a safetensors file is
finite.

usage: finite.py FILE.safetensors
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "reference"))
import safetensors_io  # noqa: E402
import torch  # noqa: E402

tensors = safetensors_io.read(sys.argv[1])
finite = all(bool(torch.isfinite(t).all()) for t in tensors.values()
             if t.is_floating_point())
print("finite" if finite else "not finite")
