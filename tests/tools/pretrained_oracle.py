#!/usr/bin/python3
"""torchvision 0.14's pretrained weights, for tst_pretrained.

  table ARCH...                 JSON: every Weights member of each architecture's enum: name,
                                url, DEFAULT or not, ImageNet acc@1 and weights.transforms()'s
                                crop_size, resize_size, mean, std, interpolation
  save ARCH PATH [SEED]         torch.save(torchvision.models.ARCH().state_dict(), PATH) after
                                torch.manual_seed(SEED) (default 0); prints the file's SHA-256
  preprocess IMAGE OUTDIR ARCH:NAME...  weights.transforms() of each on IMAGE (as ImageFolder
                                loads it): the float32 bytes to OUTDIR/ARCH-NAME.bin, the shapes
                                as JSON on stdout ({"ARCH:NAME": [3, 224, 224], ...})
"""
import hashlib
import json
import os
import sys

import torch
import torchvision
from PIL import Image


def weights_enum(arch):
    return torchvision.models.get_model_weights(arch)


def table(archs):
    rows = []
    for arch in archs:
        enum = weights_enum(arch)
        for member in enum:
            t = member.transforms()
            rows.append({
                "arch": arch,
                "name": member.name,
                "default": enum.DEFAULT is member,
                "url": member.url,
                "acc1": member.meta["_metrics"]["ImageNet-1K"]["acc@1"],
                "crop_size": t.crop_size[0],
                "resize_size": t.resize_size[0],
                "mean": list(t.mean),
                "std": list(t.std),
                "interpolation": t.interpolation.name,
            })
    print(json.dumps(rows))


def save(arch, path, seed):
    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch)
    torch.save(model.state_dict(), path)
    with open(path, "rb") as f:
        print(hashlib.sha256(f.read()).hexdigest())


def preprocess(image, outdir, pairs):
    with open(image, "rb") as f:
        img = Image.open(f).convert("RGB")  # ImageFolder's pil_loader
    shapes = {}
    for pair in pairs:
        arch, name = pair.split(":")
        tensor = weights_enum(arch)[name].transforms()(img).contiguous()
        with open(os.path.join(outdir, f"{arch}-{name}.bin"), "wb") as f:
            f.write(tensor.numpy().astype("float32").tobytes())
        shapes[pair] = list(tensor.shape)
    print(json.dumps(shapes))


def main():
    command = sys.argv[1]
    if command == "table":
        table(sys.argv[2:])
    elif command == "save":
        save(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    elif command == "preprocess":
        preprocess(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
