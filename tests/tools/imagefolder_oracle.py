"""Oracle: what torchvision's datasets.ImageFolder makes of a folder.

Usage: imagefolder_oracle.py ROOT
Prints one JSON object: {"ok": true, "classes": [...], "class_to_idx": {...},
"samples": [["rel/path", idx], ...]} or {"ok": false, "error": "..."} when torchvision raises.
Paths are relative to ROOT with forward slashes. Nothing is decoded: ImageFolder only lists files.
"""
import json
import os
import sys

import torchvision
from torchvision.datasets import ImageFolder


def main():
    root = sys.argv[1]
    try:
        dataset = ImageFolder(root)
    except (FileNotFoundError, OSError) as error:
        print(json.dumps({"ok": False, "error": str(error), "torchvision": torchvision.__version__}))
        return
    prefix = os.path.join(root, "")
    samples = []
    for path, target in dataset.samples:
        assert path.startswith(prefix), path
        samples.append([path[len(prefix):], target])
    print(json.dumps({
        "ok": True,
        "torchvision": torchvision.__version__,
        "classes": dataset.classes,
        "class_to_idx": dataset.class_to_idx,
        "samples": samples,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
