#!/usr/bin/python3
"""Oracle for tst_transforms: runs pipelines with the real torchvision 0.14 + PIL.

Usage:
  transforms_oracle.py images DIR
      Writes the test images into DIR: photo.jpg (500x375, a photo-like scene saved as JPEG),
      portrait.png (251x333 RGB), gray.png (L, 64x48), tiny.png (RGBA 31x29) and prints their
      names as JSON.
  transforms_oracle.py run REQUEST.json OUTDIR
      REQUEST: {"cases": [{"image": path, "pipeline": source, "seed": int|null}, ...]}
      For case k writes OUTDIR/k.bin (the output's raw bytes: float32 C*H*W for tensors, uint8
      H*W*C for PIL images) and prints JSON {"results": [{"ok": true, "kind": "tensor"|"image",
      "shape": [...]} | {"ok": false, "error": str}]}.
  transforms_oracle.py stats IMAGE...
      Prints the per-channel mean and std over all pixels of the images as ToTensor sees them.
  transforms_oracle.py exec FILE
      Executes a Python file and prints the repr of every torchvision Compose it defines.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as transforms
from PIL import Image, ImageDraw, ImageFilter

T = transforms
InterpolationMode = transforms.InterpolationMode


def pil_loader(path):
    # torchvision.datasets.folder.pil_loader
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


def make_images(directory):
    rng = np.random.default_rng(1234)
    w, h = 500, 375
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    # Sky-to-ground gradients, a textured field, soft noise: enough structure to catch
    # off-by-one resampling, channel swaps and rounding differences.
    r = 120 + 100 * np.sin(x / 37.0) * np.cos(y / 53.0)
    g = 90 + 0.4 * y + 30 * np.sin((x + y) / 11.0)
    b = 200 - 0.3 * y + 25 * np.cos(x / 7.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    photo = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(photo)
    draw.ellipse((60, 40, 220, 200), fill=(250, 210, 40))
    draw.rectangle((300, 180, 470, 350), fill=(30, 160, 60), outline=(0, 0, 0), width=5)
    draw.line((0, 374, 499, 0), fill=(255, 255, 255), width=3)
    photo = photo.filter(ImageFilter.GaussianBlur(0.7))
    photo.save(os.path.join(directory, "photo.jpg"), quality=90)

    portrait = photo.resize((251, 333), Image.BICUBIC).transpose(Image.FLIP_LEFT_RIGHT)
    portrait.save(os.path.join(directory, "portrait.png"))

    gray = photo.convert("L").resize((64, 48), Image.BILINEAR)
    gray.save(os.path.join(directory, "gray.png"))

    tiny = photo.resize((31, 29), Image.LANCZOS).convert("RGBA")
    alpha = Image.fromarray((np.arange(31 * 29) % 256).reshape(29, 31).astype(np.uint8))
    tiny.putalpha(alpha)
    tiny.save(os.path.join(directory, "tiny.png"))
    print(json.dumps(["photo.jpg", "portrait.png", "gray.png", "tiny.png"]))


def run(request_path, outdir):
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    results = []
    for k, case in enumerate(request["cases"]):
        try:
            pipeline = eval(case["pipeline"])
            if isinstance(pipeline, list):
                pipeline = transforms.Compose(pipeline)
            img = pil_loader(case["image"])
            if case.get("seed") is not None:
                torch.manual_seed(case["seed"])
            out = pipeline(img)
            if isinstance(out, torch.Tensor):
                arr = out.detach().to(torch.float32).contiguous().numpy()
                kind = "tensor"
            else:
                arr = np.asarray(out, dtype=np.uint8)
                if arr.ndim == 2:
                    arr = arr[:, :, None]
                kind = "image"
            arr.tofile(os.path.join(outdir, "%d.bin" % k))
            results.append({"ok": True, "kind": kind, "shape": list(arr.shape)})
        except Exception as e:  # the test compares errors too
            results.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    print(json.dumps({"results": results}))


def stats(paths):
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for path in paths:
        t = transforms.ToTensor()(pil_loader(path)).to(torch.float64)
        total += t.sum(dim=(1, 2)).numpy()
        total_sq += (t * t).sum(dim=(1, 2)).numpy()
        count += t.shape[1] * t.shape[2]
    mean = total / count
    std = np.sqrt(total_sq / count - mean * mean)
    print(json.dumps({"mean": mean.tolist(), "std": std.tolist()}))


def exec_file(path):
    namespace = {}
    with open(path, encoding="utf-8") as f:
        exec(compile(f.read(), path, "exec"), namespace)
    out = {name: repr(value) for name, value in namespace.items()
           if isinstance(value, transforms.Compose)}
    print(json.dumps(out))


def main():
    command = sys.argv[1]
    if command == "images":
        make_images(sys.argv[2])
    elif command == "run":
        run(sys.argv[2], sys.argv[3])
    elif command == "stats":
        stats(sys.argv[2:])
    elif command == "exec":
        exec_file(sys.argv[2])
    else:
        raise SystemExit("unknown command " + command)


if __name__ == "__main__":
    main()
