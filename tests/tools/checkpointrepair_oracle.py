"""Oracle for ifs::ckpt checkpoint repair (tst_checkpointrepair): what PyTorch, torchvision and
Python's fnmatch / re make of the same inputs.

Usage:
  checkpointrepair_oracle.py keys [--num-classes N] [--wrap none|dp]
      The state dict of torchvision.models.resnet18(num_classes=N) (default 1000), or of
      torch.nn.DataParallel(model) with --wrap dp, as JSON: {"keys": [[key, shape, dtype]],
      "metadata": [[module name, version]]} in order.
  checkpointrepair_oracle.py cast IN OUT FROM TO [IN OUT FROM TO ...]
      Reads IN as raw little-endian elements of dtype FROM (torch names: float32, float16, ...),
      converts them with torch.Tensor.to(TO) (a contiguous 1-D tensor, as a model's parameters)
      and writes the raw elements to OUT; for each group of four.
  checkpointrepair_oracle.py fnmatch JSON
      JSON: {"patterns": [...], "keys": [...]}. Prints [[fnmatch.fnmatchcase(key, p) for p in
      patterns] for key in keys].
  checkpointrepair_oracle.py resub JSON
      JSON: {"rules": [[pattern, replacement]], "keys": [...]}. Prints [[re.sub(p, r, key) or
      null when re.sub raises, for each rule] for key in keys].
  checkpointrepair_oracle.py load FILE [--num-classes N]
      torch.load(FILE) into resnet18(num_classes=N) with load_state_dict(strict=True): prints
      {"ok", "error", "metadata": the loaded dict's _metadata as [[name, version]] or null,
      "expected_metadata": the model's, "dtypes": {dtype name: count}}.
"""
import argparse
import fnmatch
import json
import re
import sys

import torch
import torchvision


def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def metadata_list(state_dict):
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is None:
        return None
    return [[name, entry.get("version")] for name, entry in metadata.items()]


def cmd_keys(args):
    model = torchvision.models.resnet18(num_classes=args.num_classes)
    if args.wrap == "dp":
        model = torch.nn.DataParallel(model)
    state_dict = model.state_dict()
    keys = [[k, list(v.shape), dtype_name(v.dtype)] for k, v in state_dict.items()]
    print(json.dumps({"keys": keys, "metadata": metadata_list(state_dict)}))


def cmd_cast(args):
    if len(args.groups) % 4:
        sys.exit("cast needs groups of IN OUT FROM TO")
    for i in range(0, len(args.groups), 4):
        path_in, path_out, source, target = args.groups[i:i + 4]
        with open(path_in, "rb") as f:
            data = bytearray(f.read())
        source = getattr(torch, source)
        tensor = torch.frombuffer(data, dtype=source) if data else torch.empty(0, dtype=source)
        out = tensor.to(getattr(torch, target)).contiguous()
        with open(path_out, "wb") as f:
            f.write(out.view(torch.uint8).numpy().tobytes() if out.numel() else b"")


def cmd_fnmatch(args):
    with open(args.json) as f:
        spec = json.load(f)
    print(json.dumps([[fnmatch.fnmatchcase(k, p) for p in spec["patterns"]]
                      for k in spec["keys"]]))


def cmd_resub(args):
    with open(args.json) as f:
        spec = json.load(f)
    out = []
    for key in spec["keys"]:
        row = []
        for pattern, replacement in spec["rules"]:
            try:
                row.append(re.sub(pattern, replacement, key))
            except (re.error, IndexError):
                row.append(None)
        out.append(row)
    print(json.dumps(out))


def cmd_load(args):
    model = torchvision.models.resnet18(num_classes=args.num_classes)
    result = {"ok": False, "error": None, "metadata": None,
              "expected_metadata": metadata_list(model.state_dict()), "dtypes": {}}
    try:
        state_dict = torch.load(args.file, map_location="cpu")
        result["metadata"] = metadata_list(state_dict)
        for value in state_dict.values():
            name = dtype_name(value.dtype)
            result["dtypes"][name] = result["dtypes"].get(name, 0) + 1
        model.load_state_dict(state_dict, strict=True)
        result["ok"] = True
    except Exception as e:  # the test prints it
        result["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("keys")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--wrap", choices=["none", "dp"], default="none")
    p.set_defaults(fn=cmd_keys)
    p = sub.add_parser("cast")
    p.add_argument("groups", nargs="+")
    p.set_defaults(fn=cmd_cast)
    p = sub.add_parser("fnmatch")
    p.add_argument("json")
    p.set_defaults(fn=cmd_fnmatch)
    p = sub.add_parser("resub")
    p.add_argument("json")
    p.set_defaults(fn=cmd_resub)
    p = sub.add_parser("load")
    p.add_argument("file")
    p.add_argument("--num-classes", type=int, default=1000)
    p.set_defaults(fn=cmd_load)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
