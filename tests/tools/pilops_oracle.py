#!/usr/bin/python3
"""The Pillow 9.4 / torchvision 0.14 side of tst_pilops.

Usage:
  pilops_oracle.py make-inputs DIR
      Writes the test images to DIR: photo-like RGB PNGs of odd sizes (gradients, noise, shapes,
      hard edges), a square one, a gray PNG, an RGB JPEG (the C++ side decodes it with its
      PIL-exact loader), and a Fashion-MNIST digit of Debian's dataset-fashion-mnist when
      installed. Prints a JSON list of {"name", "mode", "size"}.

  pilops_oracle.py run REQUEST.json OUTDIR
      REQUEST.json: {"inputs": DIR, "cases": [{"id", "input", "mode", "op", ...params}]}.
      Each input is opened as torchvision's loader does (Image.open(f).convert(mode)), the op is
      applied with PIL / torchvision.transforms.functional, and the result's pixels go to
      OUTDIR/<id>.raw (row-major, tightly packed, 3 bytes a pixel for "RGB", 1 for "L").
      OUTDIR/results.json maps id -> {"size": [w, h], "mode", "matrix": [repr floats]} (matrix for
      the affine ops: the one torchvision computed and handed to PIL) or {"error": str}.
"""

import gzip
import json
import os
import sys

import numpy as np
from PIL import Image, ImageOps

import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

MODES = {
    "nearest": InterpolationMode.NEAREST,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
}

TRANSPOSES = {
    "flip_left_right": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip_top_bottom": Image.Transpose.FLIP_TOP_BOTTOM,
    "rotate_90": Image.Transpose.ROTATE_90,
    "rotate_180": Image.Transpose.ROTATE_180,
    "rotate_270": Image.Transpose.ROTATE_270,
    "transpose": Image.Transpose.TRANSPOSE,
    "transverse": Image.Transpose.TRANSVERSE,
}


def photo_like(width, height, seed):
    """Smooth gradients, a few shapes with hard edges, fine texture and noise: what photos have
    and what resamplers get wrong."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 100 * np.sin(x / (width / 3.1) + 0.3) * np.cos(y / (height / 2.3))
    g = 255 * x / max(width - 1, 1)
    b = 255 * (1 - y / max(height - 1, 1))
    img = np.stack([r, g, b], axis=-1)
    # Shapes: a disc, a rectangle and a thin diagonal line (saturated colours, hard edges).
    disc = (x - width * 0.3) ** 2 + (y - height * 0.6) ** 2 < (min(width, height) * 0.2) ** 2
    img[disc] = [250, 20, 30]
    rect = (x > width * 0.55) & (x < width * 0.85) & (y > height * 0.15) & (y < height * 0.45)
    img[rect] = [10, 10, 240]
    line = np.abs((x - y * width / height)) < 1.0
    img[line] = [255, 255, 255]
    # A checkerboard patch (aliasing), fine noise everywhere.
    checker = (x.astype(int) // 2 + y.astype(int) // 2) % 2 == 0
    checker &= (x < width * 0.2) & (y < height * 0.25)
    img[checker] = [0, 0, 0]
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def fashion_mnist():
    """The first test image of Fashion-MNIST (28x28 gray), when Debian's package is there."""
    path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    if not os.path.exists(path):
        return None
    with gzip.open(path, "rb") as f:
        data = f.read(16 + 28 * 28)
    return Image.frombytes("L", (28, 28), data[16:])


def make_inputs(folder):
    os.makedirs(folder, exist_ok=True)
    made = []

    def save(img, name, **params):
        img.save(os.path.join(folder, name), **params)
        made.append({"name": name, "mode": img.mode, "size": list(img.size)})

    save(photo_like(333, 251, 1), "photo.png")
    save(photo_like(17, 13, 2), "tiny.png")
    save(photo_like(96, 96, 3), "square.png")
    save(photo_like(333, 251, 4).convert("L"), "gray.png")
    save(photo_like(500, 375, 5), "photo.jpg", quality=90)
    digit = fashion_mnist()
    if digit is not None:
        save(digit, "fashion.png")
    print(json.dumps(made))


def number(v):
    return repr(float(v))


def apply(img, case, inputs):
    op = case["op"]
    fill = case.get("fill")
    if fill is not None and img.mode == "L" and isinstance(fill, list):
        fill = fill[0]
    if isinstance(fill, int) and img.mode == "RGB":
        fill = [fill] * 3  # as torchvision's _parse_fill; PIL would read an int as a packed pixel
    if op == "resize":
        box = case.get("box")
        box = tuple(box) if box else None
        return img.resize(tuple(case["size"]), FILTERS[case["filter"]], box=box), None
    if op == "crop":
        left, top, width, height = case["rect"]
        return img.crop((left, top, left + width, top + height)), None
    if op == "transpose":
        return img.transpose(TRANSPOSES[case["transpose"]]), None
    if op == "exif":
        exif = Image.Exif()
        exif[0x0112] = case["orientation"]
        img.info["exif"] = exif.tobytes()
        return ImageOps.exif_transpose(img), None
    if op == "pad":
        fill = fill if fill is not None else 0
        return F.pad(img, case["padding"], fill=fill, padding_mode=case["padding_mode"]), None
    if op == "affine":
        width, height = img.size
        center = [width * 0.5, height * 0.5]
        matrix = F._get_inverse_affine_matrix(
            center, case["angle"], case["translate"], case["scale"], case["shear"])
        out = F.affine(img, angle=case["angle"], translate=case["translate"], scale=case["scale"],
                       shear=case["shear"], interpolation=MODES[case["filter"]], fill=fill)
        return out, matrix
    if op == "transform":
        matrix = [float(v) for v in case["matrix"]]
        fillcolor = tuple(fill) if isinstance(fill, list) else fill
        out = img.transform(tuple(case["size"]), Image.Transform.AFFINE, matrix,
                            FILTERS[case["filter"]], fillcolor=fillcolor)
        return out, matrix
    if op == "rotate":
        center = case.get("center")
        out = F.rotate(img, case["angle"], interpolation=MODES[case["filter"]],
                       expand=case["expand"], center=center, fill=fill)
        return out, None
    if op == "pil_rotate":
        # Image.rotate itself, for filters torchvision cannot name (its shortcuts ignore them).
        fillcolor = tuple(fill) if isinstance(fill, list) else fill
        out = img.rotate(case["angle"], FILTERS[case["filter"]], expand=case["expand"],
                         fillcolor=fillcolor)
        return out, None
    if op == "gray":
        return img.convert("L"), None
    if op == "rgb":
        return img.convert("RGB"), None
    if op == "blend":
        other = Image.open(os.path.join(inputs, case["other"])).convert(img.mode)
        other = other.resize(img.size, Image.Resampling.BILINEAR)
        return Image.blend(img, other, case["alpha"]), None
    if op == "brightness":
        return F.adjust_brightness(img, case["factor"]), None
    if op == "contrast":
        return F.adjust_contrast(img, case["factor"]), None
    if op == "saturation":
        return F.adjust_saturation(img, case["factor"]), None
    if op == "hue":
        return F.adjust_hue(img, case["factor"]), None
    if op == "blur":
        return F.gaussian_blur(img, case["kernel"], case["sigma"]), None
    raise ValueError(f"unknown op {op}")


def run(request_path, outdir):
    with open(request_path) as f:
        request = json.load(f)
    inputs = request["inputs"]
    os.makedirs(outdir, exist_ok=True)
    results = {}
    for case in request["cases"]:
        try:
            with open(os.path.join(inputs, case["input"]), "rb") as f:
                img = Image.open(f).convert(case["mode"])
            out, matrix = apply(img, case, inputs)
            if out.mode not in ("RGB", "L"):
                raise ValueError(f"unexpected mode {out.mode}")
            with open(os.path.join(outdir, case["id"] + ".raw"), "wb") as f:
                f.write(out.tobytes())
            entry = {"size": list(out.size), "mode": out.mode}
            if matrix is not None:
                entry["matrix"] = [number(v) for v in matrix]
            results[case["id"]] = entry
        except Exception as e:  # reported per case, so one bad case does not hide the others
            results[case["id"]] = {"error": f"{type(e).__name__}: {e}"}
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(results, f)


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "make-inputs":
        make_inputs(args[1])
    elif len(args) == 3 and args[0] == "run":
        run(args[1], args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
