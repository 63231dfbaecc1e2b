"""Copies a one-file checkpoint directory as a sharded one: its
model.safetensors becomes model-00001-of-00001.safetensors, listed in a
model.safetensors.index.json. Extra tensor names given after the directories
are listed in the index too, though the shard does not hold them.

Usage: index_checkpoint.py SOURCE_DIR TARGET_DIR [NAME...]"""
import json
import os
import shutil
import struct
import sys

source, target, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
shard = "model-00001-of-00001.safetensors"
shutil.rmtree(target, ignore_errors=True)
os.makedirs(target)
shutil.copy(os.path.join(source, "config.json"), target)
shutil.copy(os.path.join(source, "model.safetensors"), os.path.join(target, shard))
with open(os.path.join(target, shard), "rb") as f:
    (length,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(length))
names = [name for name in header if name != "__metadata__"] + extra
with open(os.path.join(target, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {}, "weight_map": {name: shard for name in names}}, f)
