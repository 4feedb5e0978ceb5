#!/usr/bin/python3
"""Oracle for tst_sampledata: checks an exported Fashion-MNIST ImageFolder tree against IDX files.

Reads the IDX files (plain or .gz) with numpy, every exported PNG with PIL, and the train/val trees
with torchvision.datasets.ImageFolder. Prints one JSON verdict on stdout:
{"ok": bool, "checked": n, "errors": [...], "splits": {...}, "imagefolder": {...}}
"""
import argparse
import gzip
import json
import os
import re
import sys

import numpy as np
from PIL import Image

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FOLDERS = [name.replace("/", "_").replace(" ", "_") for name in LABELS]
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MARKER = ".ifstudio-sample.json"


def read_idx(source, name):
    plain = os.path.join(source, name)
    path = plain if os.path.isfile(plain) else plain + ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    count = int.from_bytes(data[4:8], "big")
    if magic == 0x803:
        rows = int.from_bytes(data[8:12], "big")
        cols = int.from_bytes(data[12:16], "big")
        pixels = np.frombuffer(data, dtype=np.uint8, offset=16)
        assert pixels.size == count * rows * cols, path
        return pixels.reshape(count, rows, cols)
    assert magic == 0x801, path
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    assert labels.size == count, path
    return labels


def expected_selection(labels, limit):
    taken = [0] * len(FOLDERS)
    selected = []
    for index, label in enumerate(labels.tolist()):
        if limit > 0 and taken[label] >= limit:
            continue
        taken[label] += 1
        selected.append(index)
    return selected


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--dest", required=True)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--imagefolder", action="store_true")
    args = parser.parse_args()

    errors = []
    verdict = {"checked": 0, "splits": {}, "imagefolder": {}}

    def error(message):
        if len(errors) < 50:
            errors.append(message)

    top = sorted(os.listdir(args.dest))
    if top != sorted(["train", "val", MARKER]):
        error("unexpected entries in DEST: %s" % top)

    for split, (images_name, labels_name) in SPLITS.items():
        images = read_idx(args.source, images_name)
        labels = read_idx(args.source, labels_name)
        digits = max(5, len(str(len(labels) - 1)))
        expected = {}
        for index in expected_selection(labels, args.limit):
            relative = "%s/%s.png" % (FOLDERS[labels[index]], str(index).zfill(digits))
            expected[relative] = index
        split_root = os.path.join(args.dest, split)
        found = set()
        for folder in sorted(os.listdir(split_root)):
            if folder not in FOLDERS:
                error("%s: unexpected class folder %r" % (split, folder))
                continue
            for name in sorted(os.listdir(os.path.join(split_root, folder))):
                relative = folder + "/" + name
                found.add(relative)
                if relative not in expected:
                    error("%s/%s: not expected" % (split, relative))
                    continue
                index = expected[relative]
                with Image.open(os.path.join(split_root, relative)) as image:
                    if image.format != "PNG" or image.mode != "L":
                        error("%s/%s: %s %s, expected PNG L"
                              % (split, relative, image.format, image.mode))
                        continue
                    if image.size != (images.shape[2], images.shape[1]):
                        error("%s/%s: size %s" % (split, relative, image.size))
                        continue
                    pixels = np.asarray(image)
                if not np.array_equal(pixels, images[index]):
                    error("%s/%s: pixels differ from IDX image %d" % (split, relative, index))
                verdict["checked"] += 1
        missing = sorted(set(expected) - found)
        for relative in missing[:10]:
            error("%s/%s: missing" % (split, relative))
        verdict["splits"][split] = {"expected": len(expected), "found": len(found)}

        if args.imagefolder:
            from torchvision.datasets import ImageFolder
            dataset = ImageFolder(split_root)
            per_class = {name: 0 for name in dataset.classes}
            previous = {}
            for path, target in dataset.samples:
                folder = os.path.basename(os.path.dirname(path))
                if dataset.classes[target] != folder:
                    error("ImageFolder: %s has target %d" % (path, target))
                per_class[folder] += 1
                number = int(re.sub(r"\.png$", "", os.path.basename(path)))
                if folder in previous and number <= previous[folder]:
                    error("ImageFolder: %s is not in numeric order" % path)
                previous[folder] = number
            verdict["imagefolder"][split] = {
                "classes": dataset.classes,
                "count": len(dataset),
                "per_class": per_class,
            }

    verdict["errors"] = errors
    verdict["ok"] = not errors
    json.dump(verdict, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
