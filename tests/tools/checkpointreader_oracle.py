"""Oracle for ifs::ckpt::readCheckpoint: real files written by PyTorch, and what torch.load makes
of them.

Usage (with /usr/bin/python3: torch 1.13, torchvision 0.14):
  checkpointreader_oracle.py make DIR
      Writes checkpoint files into DIR and DIR/manifest.json:
        {"torch": version, "cases": [case...], "hostile": [hostile...]}
      case: {"name", "file", "format": zip|legacy|TorchScript|safetensors|pickle,
             "expect": describe(torch.load(file, map_location="cpu")) or null,
             "state_dict": describe(the model's state_dict()) when the file holds a model,
             "locations": the saved location of each storage, in the order torch.load meets them,
             "warnings": substrings the reader's warnings must contain (in order of the list),
             "notes": substrings its notes must contain,
             "clean": true when the reader must give no warning at all,
             "writable": true when writeCheckpoint can write the value back,
             "metadata": safetensors __metadata__ (safetensors cases)}
      hostile: {"name", "file", "error": substring of the expected error, or null when reading
                may succeed (it must not crash, hang or run anything)}
      Files with a malicious __reduce__ would create DIR/MARKER if anything executed them.
  checkpointreader_oracle.py describe FILE...
      {FILE: {"load": describe(torch.load(FILE, map_location=<recorder>)) or {"error"},
              "locations": [...]}}
  checkpointreader_oracle.py safetensors FILE...
      Reads safetensors files with json + struct only (the safetensors package is not installed):
      {FILE: {"ok", "error", "tensors": describe(OrderedDict in data order), "metadata",
              "aligned": data starts at a multiple of 8, "header_keys": names in header order}}

describe(): tensors as {type, dtype, shape, stride, offset, requires_grad, device, storage (ids in
order of first appearance; null for an empty storage), storage_numel, sha1 (of the contiguous
bytes)}; numpy arrays as the tensors torch.from_numpy gives; numpy scalars as int/float/bool;
other objects as {"type": "object", "class": module.qualname, "state": vars() when not empty}.
"""
import argparse
import collections
import ctypes
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import torch
import torchvision

MAGIC = 0x1950A86A20F9469CFC6C


def raw_bytes(address, size):
    return ctypes.string_at(address, size) if size else b""


class Describer:
    def __init__(self):
        self.storage_ids = {}

    def storage_id(self, pointer, size):
        if pointer == 0 or size == 0:
            return None
        return self.storage_ids.setdefault(pointer, len(self.storage_ids))

    def tensor(self, t, parameter=None):
        if t.is_quantized:
            return {"type": "object", "class": "torch._utils._rebuild_qtensor"}
        if t.is_sparse:
            return {"type": "object", "class": "torch._utils._rebuild_sparse_tensor"}
        data = t.detach().contiguous()
        data_bytes = raw_bytes(data.data_ptr(), data.numel() * data.element_size())
        storage = t.storage()
        return {
            "type": "Parameter" if isinstance(t, torch.nn.Parameter) else "Tensor",
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "offset": t.storage_offset(),
            "requires_grad": t.requires_grad,
            "device": str(t.device),
            "storage": self.storage_id(storage.data_ptr(), storage.size()),
            "storage_numel": storage.size(),
            "sha1": hashlib.sha1(data_bytes).hexdigest(),
        }

    def __call__(self, value):
        if value is None:
            return {"type": "None"}
        if isinstance(value, (bool, np.bool_)):
            return {"type": "bool", "value": bool(value)}
        if isinstance(value, (int, np.integer)):
            return {"type": "int", "value": str(int(value))}
        if isinstance(value, (float, np.floating)):
            return {"type": "float", "hex": struct.pack(">d", float(value)).hex()}
        if isinstance(value, (complex, np.complexfloating)):
            return {"type": "object", "class": "builtins.complex",
                    "args": [self(float(value.real)), self(float(value.imag))]}
        if isinstance(value, str):
            return {"type": "str", "value": value}
        if isinstance(value, (bytes, bytearray)):
            return {"type": "bytes", "hex": bytes(value).hex()}
        if isinstance(value, np.ndarray):
            array = value if value.dtype.isnative else value.astype(value.dtype.newbyteorder("="))
            return self.tensor(torch.from_numpy(array))
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
        if isinstance(value, (set, frozenset)):
            return {"type": "object", "class": "builtins." + type(value).__name__,
                    "size": len(value)}
        out = {"type": "object",
               "class": type(value).__module__ + "." + type(value).__qualname__}
        if hasattr(value, "__dict__") and vars(value):
            out["state"] = self(dict(vars(value)))
        return out


def describe(value):
    return Describer()(value)


def attempt(function):
    try:
        return function(), None
    except Exception as error:  # torch raises all kinds
        return None, f"{type(error).__name__}: {error}"


def load_recording(path):
    locations = []

    def record(storage, location):
        locations.append(location)
        return storage

    value, error = attempt(lambda: torch.load(path, map_location=record))
    return value, error, locations


# --- Writing test files ---------------------------------------------------------------------------


class Maker:
    def __init__(self, folder):
        self.folder = folder
        self.cases = []
        self.hostile = []

    def path(self, name):
        return os.path.join(self.folder, name)

    def add(self, name, file, fmt, expect=None, state_dict=None, warnings=(), notes=(),
            clean=False, writable=True, locations=None, metadata=None):
        case = {"name": name, "file": file, "format": fmt, "expect": expect,
                "state_dict": state_dict, "warnings": list(warnings), "notes": list(notes),
                "clean": clean, "writable": writable}
        if locations is not None:
            case["locations"] = locations
        if metadata is not None:
            case["metadata"] = metadata
        self.cases.append(case)

    def save(self, name, obj, fmt="zip", protocol=2, load=True, **case):
        """torch.save(obj) and a case whose expectation is what torch.load returns (never loaded
        when load is False: malicious files)."""
        file = name + (".pt" if fmt == "zip" else ".pth")
        torch.save(obj, self.path(file), pickle_protocol=protocol,
                   _use_new_zipfile_serialization=(fmt == "zip"))
        if load:
            loaded, error, locations = load_recording(self.path(file))
            if error:
                raise RuntimeError(f"{name}: {error}")
            case.setdefault("expect", describe(loaded))
            case.setdefault("locations", locations)
        self.add(name, file, fmt, **case)
        return file

    def add_hostile(self, name, data, error, warning=None):
        file = "hostile_" + name
        with open(self.path(file), "wb") as handle:
            handle.write(data)
        self.hostile.append({"name": name, "file": file, "error": error, "warning": warning})


def tensor_zoo():
    torch.manual_seed(1)
    zoo = collections.OrderedDict()
    for dtype in [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8,
                  torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool,
                  torch.complex64, torch.complex128]:
        name = str(dtype).replace("torch.", "")
        base = torch.randn(3, 4, dtype=torch.float64) * 50
        if dtype == torch.bool:
            zoo[name] = base > 0
        elif dtype.is_complex:
            zoo[name] = torch.complex(base, -base).to(dtype)
        else:
            zoo[name] = base.to(dtype)
    zoo["scalar"] = torch.tensor(3.5)
    zoo["scalar_int"] = torch.tensor(7, dtype=torch.int64)
    zoo["empty"] = torch.empty(0)
    zoo["empty_2d"] = torch.zeros(2, 0, 3)
    big = torch.arange(60, dtype=torch.float32)
    zoo["base"] = big
    zoo["view_offset"] = big[10:20]
    zoo["view_2d"] = big.view(6, 10)[1:, ::3]  # offset 10, strides (10, 3)
    zoo["transposed"] = big.view(6, 10).t()
    zoo["expanded"] = torch.arange(3.0).unsqueeze(1).expand(3, 4)  # stride 0
    zoo["param"] = torch.nn.Parameter(torch.randn(2, 2))
    zoo["param_frozen"] = torch.nn.Parameter(torch.randn(2), requires_grad=False)
    zoo["param_int"] = torch.nn.Parameter(torch.arange(3), requires_grad=False)
    zoo["grad_tensor"] = torch.randn(2).requires_grad_()
    weight = torch.nn.Parameter(torch.randn(5, 3))
    zoo["embedding.weight"] = weight
    zoo["head.weight"] = weight  # tied: the same object twice
    return zoo


def values_zoo():
    return {
        "none": None, "true": True, "false": False, "int": 42, "negative": -7,
        "int64": 2**62, "int_min": -2**63, "float": 0.1, "nan": float("nan"),
        "inf": float("-inf"), "zero": -0.0, "str": "héllo ✓", "empty_str": "",
        "bytes": b"\x00\xffabc\x80", "bytearray": bytearray(b"xyz"), "tuple": (1, (2, "3")),
        "list": [1, [2.5, None]], "one_list": [1], "one_dict": {"a": 1}, "empty_list": [],
        "empty_dict": {}, "int_keys": {0: "a", 1: "b"}, "tuple_key": {(1, 2): "x"},
        "size": torch.Size([2, 3]), "device": torch.device("cuda", 1),
        "cpu": torch.device("cpu"), "dtype": torch.bfloat16, "dtype2": torch.bool,
        "complex": 1.5 - 2j, "set": {5}, "frozenset": frozenset({"a"}), "slice": slice(1, None, 2),
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
    }


def numpy_zoo():
    return {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.linspace(0, 1, 5),
        "i64": np.array([[1, -2], [3, 4]], dtype=np.int64),
        "u8": np.arange(4, dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "f16": np.array([1.5, -2.25], dtype=np.float16),
        "c64": np.array([1 + 2j], dtype=np.complex64),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "big_endian": np.arange(3, dtype=">f4"),
        "zero_d": np.array(2.5),
        "empty": np.zeros((0, 2), dtype=np.float32),
        "s_f32": np.float32(1.5), "s_i64": np.int64(-3), "s_bool": np.bool_(True),
        "s_f16": np.float16(0.5), "s_u8": np.uint8(200), "s_f64": np.float64(2.0**-30),
    }


class TaggedTensor(torch.Tensor):
    """A tensor subclass: torch.save writes it with torch._tensor._rebuild_from_type_v2."""


class Malicious:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


class MaliciousEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, ("__import__('os').system('touch " + self.marker + "')",))


def resnet_state_dict():
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    with torch.no_grad():  # make the BatchNorm buffers non-trivial
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.num_batches_tracked.fill_(17)
    return model


def write_safetensors(path, tensors, metadata=None, order=None, pad=True):
    """safetensors by hand: 8-byte header length, JSON header, data in the given order."""
    names = list(tensors.keys()) if order is None else order
    header = collections.OrderedDict()
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    blobs = {}
    dtypes = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
              torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
              torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL", torch.complex64: "C64"}
    for name in names:
        t = tensors[name].detach().contiguous()
        blob = raw_bytes(t.data_ptr(), t.numel() * t.element_size())
        blobs[name] = blob
    data_order = list(tensors.keys())  # data in insertion order, header in `names` order
    offsets = {}
    for name in data_order:
        offsets[name] = (offset, offset + len(blobs[name]))
        offset += len(blobs[name])
    for name in names:
        t = tensors[name]
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": list(offsets[name])}
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text)
        for name in data_order:
            handle.write(blobs[name])


def rewrite_zip(source, target, rename=None, byteorder=None, swap=None, compress=()):
    """Copies a torch zip with records renamed, a byteorder record added, data records swapped."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for info in archive.infolist():
            data = archive.read(info)
            name = info.filename
            if swap and name in swap:
                size = swap[name]
                data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
            if rename:
                name = rename(name)
            deflate = compress and name.endswith(compress)
            kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            out.writestr(zipfile.ZipInfo(name), data, compress_type=kind)
        if byteorder:
            prefix = archive.namelist()[0].split("/")[0]
            if rename:
                prefix = rename(prefix + "/x").split("/")[0]
            out.writestr(zipfile.ZipInfo(prefix + "/byteorder"), byteorder)


def storage_element_sizes(path):
    """{record name: element size} of a torch zip, from the persistent ids of its data.pkl."""
    sizes = {}
    with zipfile.ZipFile(path) as archive:
        prefix = archive.namelist()[0].split("/")[0]

        class Reader(pickle.Unpickler):
            def find_class(self, module, name):
                if "Storage" in name:
                    return torch.serialization.StorageType(name)
                if name == "_rebuild_tensor_v2" or name == "_rebuild_parameter":
                    return lambda *args: None
                return super().find_class(module, name)

            def persistent_load(self, pid):
                _, storage_type, key, _, _ = pid
                size = torch._utils._element_size(storage_type.dtype)
                if storage_type.dtype.is_complex:  # each part swaps on its own
                    size //= 2
                sizes[prefix + "/data/" + key] = size
                return None

        Reader(io.BytesIO(archive.read(prefix + "/data.pkl"))).load()
    return sizes


def make(folder):
    os.makedirs(folder, exist_ok=True)
    maker = Maker(folder)
    marker = os.path.join(folder, "MARKER")

    # Real models: torchvision resnet18 state dicts, zip and legacy.
    model = resnet_state_dict()
    sd = model.state_dict()
    maker.save("resnet18_zip", sd, clean=True)
    maker.save("resnet18_legacy", sd, fmt="legacy", clean=True,
               notes=["legacy format"])
    maker.save("resnet18_dataparallel", torch.nn.DataParallel(model).state_dict(), clean=True)

    # Every dtype, 0-dim, empty, views, shared storages, tied weights, parameters.
    zoo = tensor_zoo()
    maker.save("tensors_zip", zoo, clean=True)
    maker.save("tensors_legacy", zoo, fmt="legacy", clean=True)
    maker.save("values", values_zoo(), writable=False)  # set, complex: inert objects
    for protocol in (2, 3, 4, 5):
        mixed = {"tensors": {"a": zoo["float32"], "v": zoo["view_2d"], "p": zoo["param"]},
                 "values": {k: v for k, v in values_zoo().items()
                            if k not in ("set", "frozenset", "complex", "slice")},
                 "numpy": {k: v for k, v in numpy_zoo().items() if k in ("f32", "fortran")}}
        maker.save(f"protocol{protocol}", mixed, protocol=protocol, clean=True)
        maker.save(f"protocol{protocol}_legacy", mixed, fmt="legacy", protocol=protocol,
                   clean=True)
    maker.save("numpy", numpy_zoo(), writable=False, warnings=[], clean=True)
    # numpy types torch has no dtype for stay inert objects (torch 1.13 cannot describe them).
    maker.save("numpy_unsupported", {"u2": np.arange(3, dtype=np.uint16),
                                     "objects": np.array([1, "a"], dtype=object),
                                     "s_u4": np.uint32(7)},
               load=False, writable=False, locations=[],
               expect={"type": "dict",
                       "keys": [describe("u2"), describe("objects"), describe("s_u4")],
                       "values": [{"type": "object", "class": "numpy.ndarray"},
                                  {"type": "object", "class": "numpy.ndarray"},
                                  describe(7)]},
               warnings=['root["u2"]: a numpy array of dtype <u2 is not supported',
                         'root["objects"]: a numpy array of Python objects'])

    # Optimizers after a step, a Lightning-like checkpoint, nested stages.
    small = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2),
                                torch.nn.BatchNorm1d(2))
    x = torch.randn(5, 4)
    optimizers = {
        "sgd": torch.optim.SGD(small.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
        "adam": torch.optim.Adam(small.parameters(), lr=1e-3, betas=(0.9, 0.99)),
    }
    for name, optimizer in optimizers.items():
        small(x).sum().backward()
        optimizer.step()
        maker.save(f"optimizer_{name}", optimizer.state_dict(), clean=True)
    lightning = {
        "epoch": 3, "global_step": 120, "pytorch-lightning_version": "1.9.0",
        "state_dict": small.state_dict(),
        "optimizer_states": [optimizers["adam"].state_dict()],
        "lr_schedulers": [{"step_size": 10, "gamma": 0.5, "last_epoch": 3}],
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {
            "best_model_score": torch.tensor(0.25)}},
        "hyper_parameters": {"lr": 0.001, "args": argparse.Namespace(lr=0.1, name="run",
                                                                     layers=[1, 2])},
    }
    maker.save("lightning", lightning, writable=False,
               warnings=['root["hyper_parameters"]["args"]: argparse.Namespace'],
               state_dict=describe(small.state_dict()))
    maker.save("stages", {"stage1": {"model": small.state_dict(), "epoch": 1},
                          "stage2": {"model": {k: v * 2 for k, v in small.state_dict().items()},
                                     "epoch": 2}}, clean=True)

    # A GPU-tagged file: saved "on" cuda:0 and cuda:1 on a CPU-only machine.
    gpu = collections.OrderedDict(a=torch.randn(3), b=torch.arange(4), c=torch.randn(2, 2))
    tags = {gpu["a"].storage().data_ptr(): "cuda:0", gpu["b"].storage().data_ptr(): "cuda:1"}
    original_tag = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: tags.get(storage.data_ptr(), "cpu")
    try:
        maker.save("gpu_zip", gpu, clean=True, notes=["cuda:0"])
        maker.save("gpu_legacy", gpu, fmt="legacy", clean=True, notes=["cuda:0"])
    finally:
        torch.serialization.location_tag = original_tag

    # TorchScript.
    torch.manual_seed(3)

    class Block(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.lin = torch.nn.Linear(n, 2)
            self.k = n

        def forward(self, x):
            return self.lin(x)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Block(3)
            self.b = Block(4)
            self.seq = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
            self.register_buffer("nb", torch.zeros(2))
            self.register_parameter("opt", None)
            self.extra = torch.ones(1)  # a plain tensor attribute: not in state_dict()

        def forward(self, x):
            return self.a(x)

    scripted = torch.jit.script(Net())
    torch.jit.save(scripted, maker.path("scripted.pt"))
    script_sd = describe(torch.jit.load(maker.path("scripted.pt")).state_dict())
    maker.add("torchscript", "scripted.pt", "TorchScript", expect=script_sd,
              state_dict=script_sd, notes=["TorchScript"], locations=None)
    torch.jit.save(torch.jit.script(resnet_state_dict()), maker.path("resnet18_script.pt"))
    script_sd = describe(torch.jit.load(maker.path("resnet18_script.pt")).state_dict())
    maker.add("resnet18_torchscript", "resnet18_script.pt", "TorchScript", expect=script_sd,
              state_dict=script_sd)

    # A whole pickled nn.Module (zip and legacy): weights from _parameters/_buffers/_modules.
    whole = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    whole[1].register_buffer("scratch", torch.ones(1), persistent=False)
    for fmt in ("zip", "legacy"):
        maker.save(f"whole_module_{fmt}", whole, fmt=fmt, expect=None, writable=False,
                   state_dict=describe(whole.state_dict()), notes=["whole pickled torch.nn.Module"])
    torch.save(resnet_state_dict(), maker.path("resnet18_whole.pt"))
    maker.add("resnet18_whole", "resnet18_whole.pt", "zip", writable=False,
              state_dict=describe(resnet_state_dict().state_dict()), notes=["torchvision"])

    # Tensors with attributes, quantized and sparse tensors: read as far as possible, with warnings.
    tagged = TaggedTensor(torch.ones(3))
    tagged.note = "extra"
    quantized = torch.quantize_per_tensor(torch.tensor([0.5, 1.0]), 0.1, 0, torch.quint8)
    sparse = torch.eye(3).to_sparse()
    maker.save("tensor_subclass", {"t": tagged}, writable=True,
               warnings=["subclass __main__.TaggedTensor"])
    maker.save("quantized", {"q": quantized, "x": torch.ones(2), "s": sparse}, writable=False,
               warnings=["quantized", "sparse"], locations=None)

    # Files newer torch writes: _rebuild_tensor_v2 with a metadata argument and
    # _rebuild_parameter_with_state. torch 1.13 cannot read them; the expectation is the tensor.
    class WithMetadata:
        def __init__(self, t):
            self.t = t

        def __reduce__(self):
            t = self.t
            return (torch._utils._rebuild_tensor_v2,
                    (t.storage(), t.storage_offset(), tuple(t.size()), t.stride(),
                     t.requires_grad, collections.OrderedDict(), {}))

    def rebuild_parameter_with_state(data, requires_grad, hooks, state):
        raise AssertionError("never called")

    rebuild_parameter_with_state.__module__ = "torch._utils"
    rebuild_parameter_with_state.__qualname__ = "_rebuild_parameter_with_state"
    rebuild_parameter_with_state.__name__ = "_rebuild_parameter_with_state"
    torch._utils._rebuild_parameter_with_state = rebuild_parameter_with_state

    class ParameterWithState:
        def __init__(self, p, state):
            self.p = p
            self.state = state

        def __reduce__(self):
            return (torch._utils._rebuild_parameter_with_state,
                    (self.p.data, self.p.requires_grad, collections.OrderedDict(), self.state))

    base = torch.arange(10.0)
    param = torch.nn.Parameter(torch.randn(2, 3))
    newer = {"meta": WithMetadata(base[2:8].view(2, 3)), "base": base,
             "param": ParameterWithState(param, None), "param_state": ParameterWithState(
                 param, {"foo": 1})}
    torch.save(newer, maker.path("newer_torch.pt"))
    expected = describe({"meta": base[2:8].view(2, 3), "base": base, "param": param,
                         "param_state": param})
    maker.add("newer_torch", "newer_torch.pt", "zip", expect=expected, warnings=["attributes"])
    del torch._utils._rebuild_parameter_with_state

    # Archive folder renamed, big-endian data with a byteorder record, deflated records.
    source = maker.path("tensors_zip.pt")
    rewrite_zip(source, maker.path("renamed.pt"),
                rename=lambda n: "some folder.v2/" + n.split("/", 1)[1])
    maker.add("renamed_archive", "renamed.pt", "zip",
              expect=maker.cases[[c["name"] for c in maker.cases].index("tensors_zip")]["expect"],
              clean=True)
    sizes = storage_element_sizes(source)
    rewrite_zip(source, maker.path("big_endian.pt"), byteorder="big", swap=sizes)
    rewrite_zip(source, maker.path("little_endian.pt"), byteorder="little")
    rewrite_zip(source, maker.path("deflated.pt"), compress=("data.pkl", "/0", "/1", "/2"))
    tensors_expect = maker.cases[[c["name"] for c in maker.cases].index("tensors_zip")]["expect"]
    maker.add("big_endian", "big_endian.pt", "zip", expect=tensors_expect, notes=["big-endian"],
              clean=True)
    maker.add("little_endian", "little_endian.pt", "zip", expect=tensors_expect, clean=True)
    maker.add("deflated", "deflated.pt", "zip", expect=tensors_expect, clean=True)

    # A plain pickle of tensors (pickle.dumps: torch.storage._load_from_bytes).
    with open(maker.path("plain.pkl"), "wb") as handle:
        pickle.dump({"w": torch.arange(6.0).view(2, 3)[:, 1:], "n": 3}, handle, protocol=4)
    with open(maker.path("plain.pkl"), "rb") as handle:
        plain = pickle.load(handle)
    maker.add("plain_pickle", "plain.pkl", "pickle", expect=describe(plain), clean=True)

    # safetensors by hand.
    st = collections.OrderedDict((k, v) for k, v in sd.items())
    write_safetensors(maker.path("resnet18.safetensors"), st, metadata={"format": "pt",
                                                                        "note": "ünï"})
    maker.add("resnet18_safetensors", "resnet18.safetensors", "safetensors",
              expect=describe(collections.OrderedDict((k, v.contiguous()) for k, v in st.items())),
              clean=True, metadata={"format": "pt", "note": "ünï"})
    zoo_st = collections.OrderedDict(
        (k, v.detach().contiguous().clone()) for k, v in tensor_zoo().items()
        if v.dtype != torch.complex128 and k != "head.weight")
    write_safetensors(maker.path("zoo.safetensors"), zoo_st,
                      order=sorted(zoo_st.keys(), reverse=True), pad=False)
    maker.add("zoo_safetensors", "zoo.safetensors", "safetensors",
              expect=describe(collections.OrderedDict(
                  (k, v.detach()) for k, v in zoo_st.items())), clean=True, metadata={})

    # Malicious pickles: os.system and eval would create MARKER if anything ran them.
    maker.save("malicious_zip", {"weights": torch.ones(2), "evil": Malicious(marker)},
               load=False, expect=None, writable=False, warnings=["posix.system"],
               locations=["cpu"])
    maker.save("malicious_legacy", {"evil": MaliciousEval(marker)}, fmt="legacy", load=False,
               expect=None, writable=False, warnings=["builtins.eval"], locations=[])
    if os.path.exists(marker):
        raise RuntimeError("the oracle itself ran a malicious pickle")

    make_hostile(maker, marker)

    with open(maker.path("manifest.json"), "w") as handle:
        json.dump({"torch": torch.__version__, "cases": maker.cases, "hostile": maker.hostile},
                  handle, indent=1, ensure_ascii=False)


def pickle_with_header(body, protocol=2):
    return bytes([0x80, protocol]) + body


def make_hostile(maker, marker):
    """Broken and lying files. error: a substring the reader's error must contain."""
    add = maker.add_hostile
    add("empty", b"", "empty")
    add("text", b"epoch,loss\n1,0.5\n2,0.25\n", "text file")
    add("html", b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n", "HTML")
    add("lfs", b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n",
        "Git LFS")
    add("bad_zip", b"PK\x03\x04" + bytes(range(256)) * 4, "ends early")
    add("zip_no_pickle", zip_bytes({"a/b.txt": b"hello"}), "data.pkl")
    add("random", bytes((i * 7919 + 13) % 251 for i in range(4096)), "not a PyTorch checkpoint")

    # Lying pickles inside a real torch zip: storage sizes, view shapes.
    def torch_zip(pkl, records):
        files = {"archive/data.pkl": pkl, "archive/version": b"3\n"}
        files.update({"archive/data/" + k: v for k, v in records.items()})
        return zip_bytes(files)

    def tensor_pickle(numel, size, stride, offset=0, storage="FloatStorage", requires_grad=False):
        body = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00((X\x07\x00\x00\x00storage"
                + b"ctorch\n" + storage.encode() + b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
                + b"\x8a\x08" + struct.pack("<q", numel) + b"tQ"
                + b"\x8a\x08" + struct.pack("<q", offset)
                + b"(" + b"".join(b"\x8a\x08" + struct.pack("<q", s) for s in size) + b"t"
                + b"(" + b"".join(b"\x8a\x08" + struct.pack("<q", s) for s in stride) + b"t"
                + (b"\x88" if requires_grad else b"\x89")
                + b"ccollections\nOrderedDict\n)RtR.")
        return body

    add("numel_lie", torch_zip(tensor_pickle(10**12, [4], [1]), {"0": b"\0" * 16}),
        "claims")
    add("numel_overflow", torch_zip(tensor_pickle(2**62, [4], [1]), {"0": b"\0" * 16}),
        "claims")
    add("view_outside", torch_zip(tensor_pickle(4, [3, 3], [3, 1]), {"0": b"\0" * 16}),
        "storage holds 4")
    add("shape_overflow", torch_zip(tensor_pickle(4, [2**40, 2**40], [1, 1]),
                                    {"0": b"\0" * 16}), "overflow")
    add("negative_stride", torch_zip(tensor_pickle(4, [2], [-1], offset=3), {"0": b"\0" * 16}),
        "negative")
    add("missing_record", torch_zip(tensor_pickle(4, [4], [1]), {}), "missing")
    add("int_grad", torch_zip(tensor_pickle(4, [4], [1], storage="LongStorage",
                                            requires_grad=True), {"0": b"\0" * 32}),
        "gradients")
    add("unsupported_storage", torch_zip(tensor_pickle(4, [4], [1], storage="QInt8Storage"),
                                         {"0": b"\0" * 4}), None,
        warning="storage type torch.QInt8Storage, which is not supported")
    add("stack_underflow", torch_zip(b"\x80\x02a.", {}), "stack underflow")
    add("empty_stop", torch_zip(b"\x80\x02.", {}), "nothing on the stack")
    add("memo_missing", torch_zip(b"\x80\x02h\x05.", {}), "memo")
    add("no_stop", torch_zip(b"\x80\x02]q\x00", {}), "ends early")
    add("unknown_opcode", torch_zip(b"\x80\x02\xff.", {}), "unknown opcode")
    add("bad_protocol", torch_zip(b"\x80\x09N.", {}), "protocol 9")
    add("unicode_lie", torch_zip(b"\x80\x04\x8d" + struct.pack("<Q", 2**60) + b"abc.", {}),
        "ends early")
    add("long4_lie", torch_zip(b"\x80\x02\x8b" + struct.pack("<i", 2**30) + b"ab.", {}),
        "ends early")
    add("frame_lie", torch_zip(b"\x80\x04\x95" + struct.pack("<Q", 2**40) + b"N.", {}),
        "ends early")
    add("depth_bomb", torch_zip(b"\x80\x02]" + b"\x85" * 1_000_000 + b".", {}), "levels deep")
    add("list_depth_bomb", torch_zip(b"\x80\x02" + b"(" * 300_000 + b"l" * 300_000 + b".", {}),
        "levels deep")
    laughs = b"\x80\x02]q\x00"  # memo 0 = []
    for level in range(1, 40):
        laughs += b"(" + b"h" + bytes([level - 1]) + b"h" + bytes([level - 1]) + b"lq" + bytes(
            [level])
    add("billion_laughs", torch_zip(laughs + b".", {}), "expands")
    add("mark_bomb", torch_zip(b"\x80\x02" + b"(" * 2_000_000 + b"N.", {}), None)
    add("dup_bomb", torch_zip(b"\x80\x02N" + b"2" * 3_000_000 + b".", {}), None)
    add("objects_bomb", torch_zip(b"\x80\x02" + b"N" * 5_000_000 + b".", {}), "objects")
    add("reduce_non_callable", torch_zip(b"\x80\x02K\x01)R.", {}), "not a function")
    add("global_then_build", torch_zip(b"\x80\x02cos\nsystem\n}b.", {}), None,
        warning="attributes on the class")
    def text(value):
        encoded = value.encode()
        return b"X" + struct.pack("<I", len(encoded)) + encoded

    touch = text("touch " + marker)
    add("getattr_chain", torch_zip(
        b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n(" + text("os") + b"tR"
        + text("system") + b"tR(" + touch + b"tR.", {}), "not a function")
    add("inst_exploit", torch_zip(b"\x80\x02(" + touch + b"ios\nsystem\n.", {}), None,
        warning="os.system kept as an inert object")
    add("reduce_exploit", torch_zip(b"\x80\x02cposix\nsystem\n(" + touch + b"tR.", {}), None,
        warning="a call of posix.system kept as an inert object (not executed)")
    add("stack_global_exploit", torch_zip(
        b"\x80\x04" + text("subprocess") + text("call") + b"\x93((" + text("touch")
        + text(marker) + b"ltR.", {}), None, warning="subprocess.call")
    add("persid_not_tuple", torch_zip(b"\x80\x02K\x01Q.", {}), "not a storage")
    add("persid_text", torch_zip(b"\x80\x02P0\n.", {}), "not a storage")

    # Deflate bombs: a data.pkl claiming 2 GiB, and one whose sizes lie.
    real = zip_bytes({"archive/data.pkl": b"\x80\x02N." + b"\0" * 100000}, deflate=True)
    add("zip_bomb_claim", patch_uncompressed_size(real, "archive/data.pkl", 0x7FFFFFFF),
        "refused")
    add("zip_size_lie", patch_uncompressed_size(real, "archive/data.pkl", 50), "damaged")

    # Legacy files that lie.
    legacy = io.BytesIO()
    torch.save({"a": torch.arange(4.0)}, legacy, _use_new_zipfile_serialization=False)
    data = legacy.getvalue()
    add("legacy_count_lie", data[:-24] + struct.pack("<q", 5) + data[-16:], "elements")
    add("legacy_truncated", data[:-3], "ends early")
    add("legacy_bad_magic", b"\x80\x02\x8a\x0a" + b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x18"
        + data[14:], "legacy")

    # safetensors that lie.
    def st(header, data=b""):
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + data

    add("st_header_lie", struct.pack("<Q", 10**6) + b'{"a":1}', "ends early")
    add("st_huge_header", struct.pack("<Q", 2**62) + b'{"a":1}', None)
    add("st_overlap", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                         b"\0" * 12), "overlapping")
    add("st_size_mismatch", st({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                               b"\0" * 8), "needs 12 bytes")
    add("st_truncated", st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                           b"\0" * 8), "ends early")
    add("st_dtype", st({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}},
                       b"\0"), "F8_E4M3")
    add("st_metadata", st({"__metadata__": {"a": 1}}), "not a string")
    add("st_shape_lie", st({"a": {"dtype": "F32", "shape": [2**40, 2**40],
                                  "data_offsets": [0, 4]}}, b"\0" * 4), None)
    add("st_not_json", struct.pack("<Q", 6) + b"{nope}", "JSON")


def zip_bytes(files, deflate=False):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name), data,
                             compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return out.getvalue()


def patch_uncompressed_size(data, name, size):
    """Sets a record's uncompressed size in both its local header and the central directory."""
    data = bytearray(data)
    encoded = name.encode()
    at = 0
    while True:
        at = data.find(b"PK\x03\x04", at)
        if at < 0:
            break
        if data[at + 30:at + 30 + len(encoded)] == encoded:
            data[at + 22:at + 26] = struct.pack("<I", size)
        at += 4
    at = 0
    while True:
        at = data.find(b"PK\x01\x02", at)
        if at < 0:
            break
        if data[at + 46:at + 46 + len(encoded)] == encoded:
            data[at + 24:at + 28] = struct.pack("<I", size)
        at += 4
    return bytes(data)


# --- Reading files the C++ side wrote ---------------------------------------------------------


def read_safetensors(path):
    with open(path, "rb") as handle:
        raw = handle.read()
    length, = struct.unpack("<Q", raw[:8])
    def unique(pairs):
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate keys")
        return collections.OrderedDict(pairs)

    header = json.loads(raw[8:8 + length].decode(), object_pairs_hook=unique)
    keys = list(header.keys())
    metadata = header.pop("__metadata__", {})
    start = 8 + length
    dtypes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
              "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool, "C64": torch.complex64}
    entries = sorted(header.items(), key=lambda item: (item[1]["data_offsets"], item[0]))
    expected = 0
    tensors = collections.OrderedDict()
    for name, info in entries:
        begin, end = info["data_offsets"]
        if begin != expected:
            raise ValueError(f"{name}: gap or overlap at {begin}, expected {expected}")
        expected = end
        dtype = dtypes[info["dtype"]]
        blob = bytearray(raw[start + begin:start + end])
        numel = 1
        for size in info["shape"]:
            numel *= size
        if numel * torch.empty(0, dtype=dtype).element_size() != len(blob):
            raise ValueError(f"{name}: size mismatch")
        flat = torch.frombuffer(blob, dtype=dtype) if blob else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"]).clone()
    if start + expected != len(raw):
        raise ValueError("data does not end with the last tensor")
    return {"tensors": describe(tensors), "metadata": metadata, "aligned": start % 8 == 0,
            "header_keys": [key for key in keys if key != "__metadata__"]}


def main():
    command = sys.argv[1]
    if command == "make":
        make(sys.argv[2])
        print(json.dumps({"ok": True}))
    elif command == "describe":
        result = {}
        for path in sys.argv[2:]:
            value, error, locations = load_recording(path)
            result[path] = {"load": {"error": error} if error else describe(value),
                            "locations": locations}
        print(json.dumps(result, ensure_ascii=False))
    elif command == "safetensors":
        result = {}
        for path in sys.argv[2:]:
            value, error = attempt(lambda: read_safetensors(path))
            result[path] = dict(value or {}, ok=error is None, error=error)
        print(json.dumps(result, ensure_ascii=False))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
