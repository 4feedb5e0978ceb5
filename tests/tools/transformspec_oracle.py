#!/usr/bin/python3
"""Oracle for tst_transformspec: evaluates transform pipelines with the real torchvision.

Usage: transformspec_oracle.py REQUEST.json
REQUEST: {"sources": [python source, ...], "signatures": [transform name, ...]}
Prints JSON: {"results": [{"ok": true, "transforms": [{"repr": ..., "attrs": {...}}]}
                          | {"ok": false, "error": ...}],
              "signatures": {name: [{"name", "required", "default"}]}}
Defaults are printed as Python literals in the same canonical form as our printer, and
"default_check" says whether eval() of that literal equals the real default.
"""
import enum
import inspect
import json
import sys

import torch
import torchvision
import torchvision.transforms as transforms
from torchvision.transforms import *  # noqa: F401,F403

T = transforms


def literal(value):
    if isinstance(value, enum.Enum):
        return "transforms.%s.%s" % (type(value).__name__, value.name)
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def attrs(t):
    out = {}
    for key, value in sorted(vars(t).items()):
        if key.startswith("_") or key == "training":
            continue
        out[key] = literal(value) if not hasattr(value, "tolist") else repr(value.tolist())
    return out


def evaluate(source):
    namespace = {"torchvision": torchvision, "torch": torch}
    exec("from torchvision.transforms import *", namespace)
    # After the star import, so that `transforms.` is the package (AutoAugment included).
    namespace["transforms"] = namespace["T"] = torchvision.transforms
    obj = eval(source, namespace)
    if isinstance(obj, transforms.Compose):
        items = obj.transforms
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    else:
        items = [obj]
    return [{"repr": repr(t), "type": type(t).__name__, "attrs": attrs(t)} for t in items]


def signature(name):
    params = []
    # torchvision.transforms itself: the star import above rebinds `transforms` to the
    # torchvision.transforms.transforms module, which lacks autoaugment.py's classes.
    package = torchvision.transforms
    for p in inspect.signature(getattr(package, name)).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            params.append({"name": p.name, "required": False, "default": "*"})
            continue
        required = p.default is inspect.Parameter.empty
        entry = {"name": p.name, "required": required}
        if not required:
            entry["default"] = literal(p.default)
            namespace = {"transforms": package}
            # The literal must read back as the real default, type included.
            back = eval(entry["default"], namespace)
            entry["default_check"] = back == p.default and type(back) is type(p.default)
        params.append(entry)
    return params


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    results = []
    for source in request.get("sources", []):
        try:
            results.append({"ok": True, "transforms": evaluate(source)})
        except Exception as e:  # report, don't crash: the test decides
            results.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    signatures = {}
    for name in request.get("signatures", []):
        try:
            signatures[name] = signature(name)
        except Exception as e:
            signatures[name] = {"error": "%s: %s" % (type(e).__name__, e)}
    json.dump({"results": results, "signatures": signatures,
               "torchvision": torchvision.__version__}, sys.stdout)


if __name__ == "__main__":
    main()
