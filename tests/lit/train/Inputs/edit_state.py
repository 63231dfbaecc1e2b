"""Copies a training checkpoint directory and breaks its trainer_state.json
in one way: FIELD=JSON sets a field (dotted for nested ones, e.g.
run.data={}), and `deep` replaces the file with JSON nested 100000 levels.

Usage: edit_state.py SOURCE_DIR TARGET_DIR EDIT"""
import json
import os
import shutil
import sys

source, target, edit = sys.argv[1:4]
shutil.rmtree(target, ignore_errors=True)
shutil.copytree(source, target)
path = os.path.join(target, "trainer_state.json")
if edit == "deep":
    text = '{"step": 1, "run": ' + "[" * 100000 + "]" * 100000 + "}"
else:
    field, value = edit.split("=", 1)
    state = json.load(open(path))
    *parents, last = field.split(".")
    node = state
    for key in parents:
        node = node[key]
    node[last] = json.loads(value)
    text = json.dumps(state)
with open(path, "w") as f:
    f.write(text)
