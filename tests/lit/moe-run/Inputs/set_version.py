"""Copies a .moex file with its format_version replaced by that of another
artifact (one moec just wrote), patching the bytes in place: the rest of
the file, damaged or not, stays as it is.

Usage: set_version.py IN OUT FROM.moex"""
import struct
import sys


def version_offset(data):
    """Where Model.format_version (field 0 of the root table) is stored."""
    root = struct.unpack_from("<I", data, 0)[0]
    vtable = root - struct.unpack_from("<i", data, root)[0]
    vtable_bytes = struct.unpack_from("<H", data, vtable)[0]
    field = struct.unpack_from("<H", data, vtable + 4)[0] if vtable_bytes > 4 else 0
    if field == 0:
        sys.exit("set_version.py: the file stores no format_version")
    return root + field


source, target, reference = sys.argv[1:4]
data = bytearray(open(source, "rb").read())
ref = open(reference, "rb").read()
(version,) = struct.unpack_from("<I", ref, version_offset(ref))
struct.pack_into("<I", data, version_offset(data), version)
open(target, "wb").write(data)
