"""Exits 1 when stdin holds a control character (other than newline) or
bytes that are not UTF-8: what a tool's messages must never print."""
import sys

data = sys.stdin.buffer.read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as error:
    sys.exit(f"not UTF-8: {error}")
bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F]
if bad:
    sys.exit(f"control characters: {bad!r}")
