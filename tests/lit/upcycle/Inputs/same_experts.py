"""Prints how many expert tensors of experts 0..N-1 are bit-identical in two
checkpoints; exits 1 if any differs."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "reference"))
import safetensors_io  # noqa: E402

a = safetensors_io.read(os.path.join(sys.argv[1], "model.safetensors"))
b = safetensors_io.read(os.path.join(sys.argv[2], "model.safetensors"))
count = int(sys.argv[3])
names = [n for n in b if ".experts." in n and int(n.split(".experts.")[1].split(".")[0]) < count]
different = [n for n in names if not a[n].equal(b[n])]
for name in different:
    print("differs:", name)
print(f"{len(names) - len(different)} expert tensors identical")
sys.exit(1 if different or not names else 0)
