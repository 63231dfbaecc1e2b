"""Rewrites a .moex artifact with one edit. flatc turns the artifact into
JSON with the schema (runtime/artifact/moex.fbs), the Python statements given
run on it, and flatc writes it back, so that an edit needs no byte offsets.

The statements see `m`, the Model table as a dict (fields at their default
value are absent: a value's kind Param and dtype F32, a kernel's op
Embedding), and these helpers:
  kernel(op, name='forward') the first kernel of that op in the program
                            named (`training`, `prefill`, ...)
  value(i)                  m['values'][i]
  param(name)               the parameter named `name`
  param_value(name)         the id of the value that reads parameter `name`
  program(name)             the program: forward, initialize, training,
                            prefill or decode_step

Usage: edit_artifact.py IN.moex OUT.moex [STATEMENT...]
(no statement: the artifact only goes through the round trip)"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
schema = os.path.join(here, "..", "..", "..", "..", "runtime", "artifact", "moex.fbs")
source, target, statements = sys.argv[1], sys.argv[2], sys.argv[3:]
flatc = shutil.which("flatc")
if not flatc:
    sys.exit("edit_artifact.py: flatc is not on PATH")

with tempfile.TemporaryDirectory() as work:
    subprocess.run([flatc, "--json", "--strict-json", "--raw-binary", "-o", work,
                    schema, "--", source], check=True)
    path = os.path.join(work, os.path.splitext(os.path.basename(source))[0] + ".json")
    m = json.load(open(path))

    def program(name):
        if name == "training":
            return m["training"]["program"]
        if name in ("prefill", "decode_step"):
            return m["generation"][name]
        return m[name]

    def kernel(op, name="forward"):
        for k in program(name)["kernels"]:
            if k.get("op", "Embedding") == op:
                return k
        raise KeyError(f"no {op} kernel in {name}")

    def value(i):
        return m["values"][i]

    def param(name):
        for p in m["params"]:
            if p["name"] == name:
                return p
        raise KeyError(f"no parameter {name}")

    def param_value(name):
        for i, v in enumerate(m["values"]):
            if (v.get("kind", "Param") == "Param" and
                    m["params"][v.get("index", 0)]["name"] == name):
                return i
        raise KeyError(f"no value reads parameter {name}")

    for statement in statements:
        exec(statement)
    with open(os.path.join(work, "edited.json"), "w") as f:
        json.dump(m, f)
    subprocess.run([flatc, "--binary", "-o", work, schema,
                    os.path.join(work, "edited.json")], check=True)
    shutil.copy(os.path.join(work, "edited.moex"), target)
