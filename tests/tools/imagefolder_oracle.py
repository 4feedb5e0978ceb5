"""Oracle: what torchvision's datasets.ImageFolder makes of a folder.

Usage: imagefolder_oracle.py ROOT [--samples-json]
Prints one JSON object: {"ok": true, "classes": [...], "class_to_idx": {...},
"samples": [["rel/path", idx], ...]} or {"ok": false, "error": "..."} when torchvision raises.
Paths are relative to ROOT with forward slashes. Nothing is decoded: ImageFolder only lists files.

File names that are not valid UTF-8 reach Python as str holding lone surrogates (os.fsdecode()'s
surrogateescape: byte 0xff is "\\udcff"); json.dumps() escapes them, so the output is ASCII and
json.loads() gives back the very same str.
--samples-json prints only json.dumps(samples, separators=(",", ":")): the text that
`ifstudio-cli scan --json` writes for the samples, byte for byte, when no name holds valid
non-ASCII text (which we write as UTF-8 instead of \\u escapes).
"""
import json
import os
import sys

import torchvision
from torchvision.datasets import ImageFolder


def main():
    root = sys.argv[1]
    samples_only = "--samples-json" in sys.argv[2:]
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
    if samples_only:
        print(json.dumps(samples, separators=(",", ":")))
        return
    print(json.dumps({
        "ok": True,
        "torchvision": torchvision.__version__,
        "classes": dataset.classes,
        "class_to_idx": dataset.class_to_idx,
        "samples": samples,
    }))


if __name__ == "__main__":
    main()
