"""Prints the losses of a metrics.jsonl (everything but timings), one per line."""
import json
import sys

for line in open(sys.argv[1]):
    record = json.loads(line)
    if "loss" in record:
        print(f"step {record['step']} loss {record['loss']!r} ce {record['ce']!r}")
    for name, value in record.get("eval_ce", {}).items():
        print(f"eval {name} {value!r}")
