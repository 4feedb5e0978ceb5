#!/usr/bin/env python3
"""Writes a zip-bomb checkpoint: a torch.save zip whose tensor records are deflated zeros.

    make_zip_bomb.py OUT MEMBERS MIB

OUT holds MEMBERS float32 tensors (a dict {"t0": ..., "t1": ...}), each MIB MiB of zeros stored
deflated: about a thousandth of that on disk, as the checkpoints of issue 13 (1 GiB members of
about 1 MB each). Standard library only: the pickle names torch's globals as torch.save writes
them, without importing torch, and the zip is written by hand so that the zeros are compressed
once, not once per member.
"""
import collections
import pickle
import struct
import sys
import types
import zlib


def fake_torch():
    """The two torch globals the pickle names, as modules pickle can find them in."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise RuntimeError("never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"

    class FloatStorage:
        pass

    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    torch.FloatStorage = FloatStorage
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    return torch, utils


class StorageRef:
    def __init__(self, key, numel):
        self.key = key
        self.numel = numel


class TensorStub:
    def __init__(self, rebuild, ref):
        self.rebuild = rebuild
        self.ref = ref

    def __reduce__(self):
        return (self.rebuild, (self.ref, 0, (self.ref.numel,), (1,), False,
                               collections.OrderedDict()))


def data_pkl(members, numel):
    torch, utils = fake_torch()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, StorageRef):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
            return None

    import io
    out = io.BytesIO()
    tensors = {f"t{i}": TensorStub(utils._rebuild_tensor_v2, StorageRef(str(i), numel))
               for i in range(members)}
    Pickler(out, protocol=2).dump(tensors)
    return out.getvalue()


def zeros_deflated(size):
    """Raw deflate of `size` zero bytes and their CRC-32, in pieces (no big buffer)."""
    piece = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = []
    crc = 0
    left = size
    while left > 0:
        chunk = piece if left >= len(piece) else bytes(left)
        parts.append(compressor.compress(chunk))
        crc = zlib.crc32(chunk, crc)
        left -= len(chunk)
    parts.append(compressor.flush())
    return b"".join(parts), crc


def write_zip(path, records):
    """records: (name, method, crc, compressed bytes, size). No ZIP64: sizes stay below 4 GiB."""
    directory = []
    with open(path, "wb") as f:
        for name, method, crc, data, size in records:
            offset = f.tell()
            encoded = name.encode()
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                                len(data), size, len(encoded), 0))
            f.write(encoded)
            f.write(data)
            directory.append((encoded, method, crc, len(data), size, offset))
        start = f.tell()
        for encoded, method, crc, compressed, size, offset in directory:
            f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                                crc, compressed, size, len(encoded), 0, 0, 0, 0, 0, offset))
            f.write(encoded)
        end = f.tell()
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(directory), len(directory),
                            end - start, start, 0))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    out, members, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    size = mib << 20
    pkl = data_pkl(members, size // 4)
    deflated, crc = zeros_deflated(size)
    records = [("archive/data.pkl", 0, zlib.crc32(pkl), pkl, len(pkl)),
               ("archive/byteorder", 0, zlib.crc32(b"little"), b"little", 6)]
    records += [(f"archive/data/{i}", 8, crc, deflated, size) for i in range(members)]
    records.append(("archive/version", 0, zlib.crc32(b"3\n"), b"3\n", 2))
    write_zip(out, records)


if __name__ == "__main__":
    main()
