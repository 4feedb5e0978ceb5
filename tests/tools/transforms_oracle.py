#!/usr/bin/python3
"""Oracle for tst_transforms: runs pipelines with the real torchvision 0.14 + PIL.

Usage:
  transforms_oracle.py images DIR
      Writes the test images into DIR: photo.jpg (500x375, a photo-like scene saved as JPEG),
      portrait.png (251x333 RGB), gray.png (L, 64x48), tiny.png (RGBA 31x29) and prints their
      names as JSON.
  transforms_oracle.py run REQUEST.json OUTDIR
      REQUEST: {"cases": [{"image": path, "pipeline": source, "seed": int|null}, ...]}
      A seed seeds both torch (torch.manual_seed) and Python's random (random.seed).
      For case k writes OUTDIR/k.bin (the output's raw bytes: float32 C*H*W for tensors, uint8
      H*W*C for PIL images) and prints JSON {"results": [{"ok": true, "kind": "tensor"|"image",
      "shape": [...]} | {"ok": false, "error": str}]}.
  transforms_oracle.py fuzz COUNT SEED DIR OUTDIR
      Writes the test images into DIR (as `images`, plus modes P, LA, 1 and I;16), draws COUNT
      random pipelines over every transform the engine runs (nested containers and policies
      included) with random.Random(SEED), runs each with its own seed as `run` does and prints
      JSON {"cases": [{"image", "pipeline", "seed", "tolerance"}...], "results": [...]}.
  transforms_oracle.py stats IMAGE...
      Prints the per-channel mean and std over all pixels of the images as ToTensor sees them.
  transforms_oracle.py exec FILE
      Executes a Python file and prints the repr of every torchvision Compose it defines.
"""
import json
import math
import os
import random
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
    print(json.dumps({"results": run_cases(request["cases"], outdir)}))


def run_cases(cases, outdir):
    results = []
    for k, case in enumerate(cases):
        try:
            pipeline = eval(case["pipeline"])
            if isinstance(pipeline, list):
                pipeline = transforms.Compose(pipeline)
            img = pil_loader(case["image"])
            if case.get("seed") is not None:
                # RandomOrder and RandomChoice draw from Python's random, the rest from torch.
                random.seed(case["seed"])
                torch.manual_seed(case["seed"])
            out = pipeline(img)
            if isinstance(out, tuple):  # FiveCrop, TenCrop: the crops side by side
                out = Image.fromarray(np.concatenate([np.asarray(c) for c in out], axis=1))
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
    return results


def make_mode_images(directory):
    """The photo in the other modes a dataset holds; the loader converts each to RGB."""
    photo = Image.open(os.path.join(directory, "photo.jpg")).convert("RGB")
    small = photo.resize((120, 90), Image.BILINEAR)
    small.quantize(colors=37).save(os.path.join(directory, "palette.png"))
    la = small.convert("LA")
    la.putalpha(Image.fromarray((np.arange(120 * 90) % 251).reshape(90, 120).astype(np.uint8)))
    la.save(os.path.join(directory, "la.png"))
    small.convert("1").save(os.path.join(directory, "bw.png"))
    return ["palette.png", "la.png", "bw.png"]


class PipelineDrawer:
    """Random torchvision pipelines over the transforms the engine runs, as source text, with
    the tolerance (in 8-bit steps) the README states for their ops: 1 where bilinear or bicubic
    resampling in PIL's affine/rotate/perspective or GaussianBlur runs, else exact."""

    def __init__(self, rng):
        self.r = rng
        self.tolerance = 0

    def f(self, lo, hi, digits=2):
        return round(self.r.uniform(lo, hi), digits)

    def interp(self, smooth_ok=True):
        modes = ["NEAREST", "BILINEAR", "BICUBIC"] if smooth_ok else ["NEAREST"]
        m = self.r.choice(modes)
        if m != "NEAREST":
            self.tolerance = max(self.tolerance, 1)
        return "T.InterpolationMode." + m

    def fill(self):
        return self.r.choice(["0", "128", "(255, 0, 60)", "None"])

    def image_step(self, depth=0):
        r = self.r
        kinds = ["Resize", "CenterCrop", "RandomCrop", "RandomResizedCrop", "HFlip", "VFlip",
                 "Rotation", "Affine", "ColorJitter", "Grayscale", "RandomGrayscale", "Blur", "Pad",
                 "Invert", "Posterize", "Solarize", "Sharpness", "Autocontrast", "Equalize",
                 "Perspective", "AutoAugment", "RandAugment", "TrivialAugmentWide"]
        if depth < 2:
            kinds += ["RandomApply", "RandomChoice", "RandomOrder"] * 2
        k = r.choice(kinds)
        if k == "Resize":
            size = r.choice([str(r.randint(16, 160)), "(%d, %d)" % (r.randint(16, 160), r.randint(16, 160))])
            return "T.Resize(%s, interpolation=T.InterpolationMode.%s)" % (
                size, r.choice(["NEAREST", "BILINEAR", "BICUBIC", "BOX", "HAMMING", "LANCZOS"]))
        if k == "CenterCrop":
            return "T.CenterCrop(%d)" % r.randint(8, 120)
        if k == "RandomCrop":
            return "T.RandomCrop(%d, padding=%d, pad_if_needed=True, padding_mode='%s')" % (
                r.randint(8, 100), r.randint(0, 6), r.choice(["constant", "edge", "reflect", "symmetric"]))
        if k == "RandomResizedCrop":
            lo = self.f(0.05, 0.9)
            return "T.RandomResizedCrop(%d, scale=(%s, 1.0), interpolation=T.InterpolationMode.%s)" % (
                r.randint(16, 128), lo, r.choice(["BILINEAR", "BICUBIC", "NEAREST"]))
        if k == "HFlip":
            return "T.RandomHorizontalFlip(p=%s)" % self.f(0, 1)
        if k == "VFlip":
            return "T.RandomVerticalFlip(p=%s)" % self.f(0, 1)
        if k == "Rotation":
            return "T.RandomRotation(%d, interpolation=%s, expand=%s, fill=%s)" % (
                r.randint(1, 180), self.interp(), r.choice(["True", "False"]), self.fill().replace("None", "0"))
        if k == "Affine":
            return "T.RandomAffine(%d, translate=(%s, %s), scale=(%s, %s), shear=%d, interpolation=%s)" % (
                r.randint(0, 90), self.f(0, 0.3), self.f(0, 0.3), self.f(0.6, 1.0), self.f(1.0, 1.4),
                r.randint(0, 30), self.interp())
        if k == "ColorJitter":
            return "T.ColorJitter(%s, %s, %s, %s)" % (self.f(0, 0.8), self.f(0, 0.8), self.f(0, 0.8), self.f(0, 0.5))
        if k == "Grayscale":
            return "T.Grayscale(num_output_channels=%d)" % r.choice([1, 3])
        if k == "RandomGrayscale":
            return "T.RandomGrayscale(p=%s)" % self.f(0, 1)
        if k == "Blur":
            self.tolerance = max(self.tolerance, 1)
            return "T.GaussianBlur(%d, sigma=(%s, %s))" % (r.choice([1, 3, 5, 7]), self.f(0.1, 1.0), self.f(1.0, 3.0))
        if k == "Pad":
            return "T.Pad(%d, padding_mode='%s')" % (r.randint(0, 8), r.choice(["constant", "edge", "reflect", "symmetric"]))
        if k == "Invert":
            return "T.RandomInvert(p=%s)" % self.f(0, 1)
        if k == "Posterize":
            return "T.RandomPosterize(%d, p=%s)" % (r.randint(0, 8), self.f(0, 1))
        if k == "Solarize":
            return "T.RandomSolarize(%d, p=%s)" % (r.randint(0, 255), self.f(0, 1))
        if k == "Sharpness":
            return "T.RandomAdjustSharpness(%s, p=%s)" % (self.f(0, 3), self.f(0, 1))
        if k == "Autocontrast":
            return "T.RandomAutocontrast(p=%s)" % self.f(0, 1)
        if k == "Equalize":
            return "T.RandomEqualize(p=%s)" % self.f(0, 1)
        if k == "Perspective":
            return "T.RandomPerspective(%s, p=%s, interpolation=%s, fill=%s)" % (
                self.f(0, 1), self.f(0, 1), self.interp(), self.fill().replace("None", "0"))
        if k == "AutoAugment":
            return "T.AutoAugment(T.AutoAugmentPolicy.%s, interpolation=%s, fill=%s)" % (
                r.choice(["IMAGENET", "CIFAR10", "SVHN"]), self.interp(), self.fill())
        if k == "RandAugment":
            bins = r.randint(2, 40)
            return "T.RandAugment(num_ops=%d, magnitude=%d, num_magnitude_bins=%d, interpolation=%s, fill=%s)" % (
                r.randint(0, 4), r.randint(0, bins - 1), bins, self.interp(), self.fill())
        if k == "TrivialAugmentWide":
            return "T.TrivialAugmentWide(num_magnitude_bins=%d, interpolation=%s, fill=%s)" % (
                r.randint(2, 40), self.interp(), self.fill())
        inner = [self.image_step(depth + 1) for _ in range(r.randint(1, 3))]
        if r.random() < 0.2:
            inner = ["T.Compose([%s])" % ", ".join(inner)]
        if k == "RandomApply":
            return "T.RandomApply([%s], p=%s)" % (", ".join(inner), self.f(0, 1))
        if k == "RandomChoice":
            if r.random() < 0.5:
                weights = ", ".join(str(self.f(0.1, 2)) for _ in inner)
                return "T.RandomChoice([%s], p=[%s])" % (", ".join(inner), weights)
            return "T.RandomChoice([%s])" % ", ".join(inner)
        return "T.RandomOrder([%s])" % ", ".join(inner)

    def pipeline(self):
        r = self.r
        steps = [self.image_step() for _ in range(r.randint(1, 4))]
        if r.random() < 0.08:  # a tuple of crops ends the pipeline
            size = r.choice([str(r.randint(4, 40)), "(%d, %d)" % (r.randint(4, 40), r.randint(4, 40))])
            steps.append(r.choice(["T.FiveCrop(%s)" % size,
                                   "T.TenCrop(%s, vertical_flip=%s)" % (size, r.choice(["True", "False"]))]))
            return "T.Compose([%s])" % ", ".join(steps)
        if r.random() < 0.6:
            steps.append("T.ToTensor()")
            if r.random() < 0.5:
                steps.append("T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))"
                             if r.random() < 0.8 else "T.Normalize((0.5,), (0.25,))")
            if r.random() < 0.3:
                steps.append("T.RandomErasing(p=%s, value=%s)" % (self.f(0, 1), r.choice(["0", "'random'"])))
        return "T.Compose([%s])" % ", ".join(steps)


def fuzz(count, seed, directory, outdir):
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        make_images(directory)
    images = ["photo.jpg", "portrait.png", "gray.png", "tiny.png"] + make_mode_images(directory)
    rng = random.Random(seed)
    cases = []
    for k in range(count):
        drawer = PipelineDrawer(rng)
        source = drawer.pipeline()
        cases.append({"image": os.path.join(directory, images[k % len(images)]),
                      "pipeline": source, "seed": rng.randint(0, 2**31 - 1),
                      "tolerance": drawer.tolerance})
    results = run_cases(cases, outdir)
    print(json.dumps({"cases": cases, "results": results}))


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
    elif command == "fuzz":
        fuzz(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif command == "stats":
        stats(sys.argv[2:])
    elif command == "exec":
        exec_file(sys.argv[2])
    else:
        raise SystemExit("unknown command " + command)


if __name__ == "__main__":
    main()
