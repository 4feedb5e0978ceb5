#!/usr/bin/python3
"""Asks torchvision's default loader about every file under ROOT.

Usage: health_pil_oracle.py ROOT [--dump DIR]

For each regular file under ROOT (sorted, recursive), in one JSON object on stdout:
  {"path": rel, "ok": bool, "error": str, "error_type": str, "warnings": [str],
   "format": str, "mode": str, "size": [w, h], "orientation": n}
"ok" is whether torchvision.datasets.folder.pil_loader (Image.open(f).convert("RGB"), default PIL
settings) succeeds. format/mode/size are what Image.open() reports before conversion (when it
opens). With --dump DIR, the converted RGB pixels of each loadable file go to DIR/<n>.rgb (raw,
row-major, 3 bytes a pixel) and "dump" names that file.
"""

import json
import os
import sys
import warnings

from PIL import Image

try:
    from torchvision.datasets.folder import pil_loader
except ImportError:  # the same function, in case torchvision is missing
    def pil_loader(path):
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB")


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    root = args[0]
    dump = args[args.index("--dump") + 1] if "--dump" in args else None
    if dump:
        os.makedirs(dump, exist_ok=True)
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            paths.append(os.path.relpath(os.path.join(dirpath, name), root))
    paths.sort()
    out = []
    for n, rel in enumerate(paths):
        full = os.path.join(root, rel)
        entry = {"path": rel, "ok": False, "error": "", "error_type": "", "warnings": []}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with open(full, "rb") as f:
                    img = Image.open(f)
                    entry["format"] = img.format
                    entry["mode"] = img.mode
                    entry["size"] = list(img.size)
                    try:
                        entry["orientation"] = int(img.getexif().get(0x0112, 1))
                    except Exception:
                        entry["orientation"] = 1
            except Exception as e:
                pass
            try:
                rgb = pil_loader(full)
                entry["ok"] = True
                if dump:
                    name = "%d.rgb" % n
                    with open(os.path.join(dump, name), "wb") as f:
                        f.write(rgb.tobytes())
                    entry["dump"] = name
            except Exception as e:
                entry["error"] = str(e)
                entry["error_type"] = type(e).__name__
            entry["warnings"] = sorted({w.category.__name__ for w in caught})
        out.append(entry)
    json.dump({"files": out}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
