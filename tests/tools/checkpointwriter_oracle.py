"""Oracle: what PyTorch makes of checkpoint files written by ifs::ckpt::writeCheckpoint.

Usage:
  checkpointwriter_oracle.py inspect FILE...
      Prints one JSON object keyed by FILE, each with:
        "zip":     testzip() result, record names in order, records whose data does not start at
                   a multiple of 64, records whose local header disagrees with the central
                   directory (CRC, sizes), `unzip -t` (when installed), the text of the
                   byteorder and version records, ZIP64 use;
        "pickle":  the globals of data.pkl (in order, unique), those off the weights-only
                   allow-list, the opcodes, those the weights-only unpickler does not implement;
        "load":    torch.load(FILE, map_location=<callable that records each storage's location>)
                   described (see describe()), or the error;
        "locations": the locations that callable saw, in order;
        "plain":   torch.load(FILE) without map_location: ok / error, and whether it describes
                   the same as "load";
        "weights_only": torch.load(FILE, weights_only=True, map_location="cpu"): ok / error, and
                   whether it describes the same as "load".
  checkpointwriter_oracle.py module FILE KIND
      Loads the state dict in FILE into a fresh module with load_state_dict(strict=True) and
      prints {"ok", "error", "output": forward(x) as a list of floats, "params": described}.
      KIND: "linear" (nn.Linear(4, 3)) or "sequential" (Linear(4, 8), ReLU, Linear(8, 2),
      BatchNorm1d(2) in eval mode). x is torch.arange(8.).reshape(2, 4) / 4.
"""
import collections
import ctypes
import hashlib
import json
import pickletools
import shutil
import struct
import subprocess
import sys
import zipfile

import torch

# What torch.load(weights_only=True) allows in recent PyTorch (torch/_weights_only_unpickler.py);
# the writer must stay inside this set.
STORAGE_CLASSES = [
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "CharStorage",
    "ShortStorage", "IntStorage", "LongStorage", "ByteStorage", "BoolStorage",
    "ComplexFloatStorage", "ComplexDoubleStorage",
]
DTYPES = [
    "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8",
    "bool", "complex64", "complex128",
]
ALLOWED_GLOBALS = (
    {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
     "torch._utils._rebuild_parameter", "torch.Size", "torch.device", "_codecs.encode"}
    | {"torch." + name for name in STORAGE_CLASSES}
    | {"torch." + name for name in DTYPES}
)
WEIGHTS_ONLY_OPCODES = {
    "PROTO", "STOP", "GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS", "SETITEM",
    "SETITEMS", "MARK", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "NONE", "NEWFALSE", "NEWTRUE",
    "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BININT", "BININT1", "BININT2",
    "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING", "BINPERSID", "BINGET", "LONG_BINGET", "BINPUT",
    "LONG_BINPUT", "LONG1",
}
HEX_LIMIT = 4096


def raw_bytes(address, size):
    return ctypes.string_at(address, size) if size else b""


class Describer:
    """JSON for a loaded object. Storages get small ids in order of first appearance."""

    def __init__(self):
        self.storage_ids = {}

    def storage_id(self, tensor):
        pointer = tensor.storage().data_ptr()
        if pointer == 0:
            return None
        return self.storage_ids.setdefault(pointer, len(self.storage_ids))

    def tensor(self, t):
        data = t.detach().contiguous()
        data_bytes = raw_bytes(data.data_ptr(), data.numel() * data.element_size())
        storage = t.storage()
        storage_bytes = raw_bytes(storage.data_ptr(), storage.size() * storage.element_size())
        out = {
            "type": "Parameter" if isinstance(t, torch.nn.Parameter) else "Tensor",
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "offset": t.storage_offset(),
            "requires_grad": t.requires_grad,
            "device": str(t.device),
            "storage": self.storage_id(t),
            "storage_numel": storage.size(),
            "storage_sha256": hashlib.sha256(storage_bytes).hexdigest(),
            "sha256": hashlib.sha256(data_bytes).hexdigest(),
        }
        if len(data_bytes) <= HEX_LIMIT:
            out["hex"] = data_bytes.hex()
        return out

    def __call__(self, value):
        if value is None:
            return {"type": "None"}
        if isinstance(value, bool):
            return {"type": "bool", "value": value}
        if isinstance(value, int):
            return {"type": "int", "value": str(value)}
        if isinstance(value, float):
            return {"type": "float", "hex": struct.pack(">d", value).hex()}
        if isinstance(value, str):
            return {"type": "str", "value": value}
        if isinstance(value, bytes):
            return {"type": "bytes", "hex": value.hex()}
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, torch.Size):
            return {"type": "Size", "value": list(value)}
        if isinstance(value, torch.device):
            return {"type": "device", "value": str(value)}
        if isinstance(value, torch.dtype):
            return {"type": "dtype", "value": str(value)}
        if isinstance(value, (tuple, list)):
            return {"type": type(value).__name__, "items": [self(item) for item in value]}
        if isinstance(value, dict):
            out = {
                "type": "OrderedDict" if isinstance(value, collections.OrderedDict) else "dict",
                "keys": [self(key) for key in value.keys()],
                "values": [self(item) for item in value.values()],
            }
            if hasattr(value, "__dict__") and vars(value):
                out["attributes"] = self(dict(vars(value)))
            return out
        return {"type": "unexpected " + type(value).__module__ + "." + type(value).__name__}


def describe(value):
    return Describer()(value)


def inspect_zip(path):
    with open(path, "rb") as handle:
        raw = handle.read()
    out = {"misaligned": [], "zip64": False}
    with zipfile.ZipFile(path) as archive:
        out["testzip"] = archive.testzip()
        out["names"] = archive.namelist()
        for info in archive.infolist():
            offset = info.header_offset
            name_length, extra_length = struct.unpack("<HH", raw[offset + 26:offset + 30])
            data_start = offset + 30 + name_length + extra_length
            if data_start % 64:
                out["misaligned"].append(info.filename)
            if info.compress_type != zipfile.ZIP_STORED:
                out.setdefault("compressed", []).append(info.filename)
            extra = raw[offset + 30 + name_length:data_start]
            local_crc, local_compressed, local_size = struct.unpack(
                "<III", raw[offset + 14:offset + 26])
            if extra[:2] == b"\x01\x00":
                out["zip64"] = True
                if local_size == 0xFFFFFFFF:
                    local_size, local_compressed = struct.unpack("<QQ", extra[4:20])
            # Python and miniz read the central directory only; other tools check the local copy.
            if (local_crc, local_compressed, local_size) != (info.CRC, info.compress_size,
                                                            info.file_size):
                out.setdefault("local_header_mismatch", []).append(info.filename)
            if info.filename.endswith("/byteorder"):
                out["byteorder"] = archive.read(info).decode()
            if info.filename.endswith("/version"):
                out["version"] = archive.read(info).decode()
            if info.filename.endswith("/data.pkl"):
                pickle_bytes = archive.read(info)
    if shutil.which("unzip"):  # Info-ZIP checks each local header and CRC on its own
        run = subprocess.run(["unzip", "-tq", path], capture_output=True, text=True)
        out["unzip"] = {"ok": run.returncode == 0, "output": (run.stdout + run.stderr)[-2000:]}
    globals_seen = []
    opcodes = set()
    for opcode, argument, _ in pickletools.genops(pickle_bytes):
        opcodes.add(opcode.name)
        if opcode.name == "GLOBAL":
            name = argument.replace(" ", ".")
            if name not in globals_seen:
                globals_seen.append(name)
    return out, {
        "globals": globals_seen,
        "disallowed": [name for name in globals_seen if name not in ALLOWED_GLOBALS],
        "opcodes": sorted(opcodes),
        "unsupported_opcodes": sorted(opcodes - WEIGHTS_ONLY_OPCODES),
    }


def attempt(function):
    try:
        return function(), None
    except Exception as error:  # torch raises all kinds
        return None, f"{type(error).__name__}: {error}"


def inspect(path):
    report = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    report["zip"], report["pickle"] = inspect_zip(path)
    locations = []

    def record(storage, location):
        locations.append(location)
        return storage

    loaded, error = attempt(lambda: torch.load(path, map_location=record))
    reference = describe(loaded) if error is None else None
    report["load"] = reference if error is None else {"error": error}
    report["locations"] = locations

    plain, error = attempt(lambda: torch.load(path))
    report["plain"] = {"ok": error is None, "error": error,
                       "same": error is None and describe(plain) == reference}
    safe, error = attempt(lambda: torch.load(path, weights_only=True, map_location="cpu"))
    report["weights_only"] = {"ok": error is None, "error": error,
                              "same": error is None and describe(safe) == reference}
    return report


def load_module(path, kind):
    torch.manual_seed(0)
    if kind == "linear":
        module = torch.nn.Linear(4, 3)
    else:
        module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                     torch.nn.Linear(8, 2), torch.nn.BatchNorm1d(2))
    state, error = attempt(lambda: torch.load(path))
    if error is None:
        _, error = attempt(lambda: module.load_state_dict(state, strict=True))
    if error is not None:
        return {"ok": False, "error": error}
    module.eval()
    with torch.no_grad():
        output = module(torch.arange(8.0).reshape(2, 4) / 4)
    return {"ok": True, "output": output.flatten().tolist(),
            "params": describe(collections.OrderedDict(module.state_dict()))}


def main():
    command = sys.argv[1]
    if command == "inspect":
        result = {path: inspect(path) for path in sys.argv[2:]}
    elif command == "module":
        result = load_module(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
