#!/usr/bin/python3
"""Oracle for tst_torchrng: runs programs of random draws with the real torch and torchvision.

Usage: torchrng_oracle.py REQUEST.json [--capability default|avx2]
REQUEST: {"programs": [{"name": str, "steps": [step, ...]}, ...],
          "log": [float32 bits, ...], "exp": [float32 bits, ...]}
A step is an object with "op" and its arguments (see step_result); "seed" runs torch.manual_seed,
or with "fresh" puts the default generator in the state of a new torch.Generator().
Prints JSON: {"capability": "AVX2" | "DEFAULT" | ..., "programs": {name: [result, ...]},
              "log": [float32 bits, ...], "exp": [float32 bits, ...]}
Every result is a string, so that nothing is lost on the way: integers in decimal, float32 values
as 8 hex digits of their bits, Python floats (doubles) as 16 hex digits of theirs, lists joined by
",", missing values as "None".
--capability sets ATEN_CPU_CAPABILITY before torch is imported.
"""
import json
import os
import struct
import sys

if "--capability" in sys.argv:
    os.environ["ATEN_CPU_CAPABILITY"] = sys.argv[sys.argv.index("--capability") + 1]

import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402


def f32(value):
    return "%08x" % struct.unpack("<I", struct.pack("<f", value))[0]


def f64(value):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]


def opt(value, fmt):
    return "None" if value is None else fmt(value)


def tensor_bits(t):
    return ",".join(f32(v) for v in t.flatten().tolist())


def image(c, h, w):
    # Only the shape matters to get_params: an expanded scalar costs no memory.
    return torch.empty(1).expand(c, h, w)


def step_result(step):
    op = step["op"]
    if op == "seed":
        if step["seed"] == "fresh":
            # A new torch.Generator() starts from default_rng_seed_val. (The default generator of
            # a new process does not: it is seeded from the system's entropy.)
            torch.default_generator.set_state(torch.Generator().get_state())
        else:
            torch.manual_seed(int(step["seed"]))
        return []
    if op == "raw32":
        # random_(0, 2**32 - 1) is random() % (2**32 - 1): the raw draw but for one value.
        return [str(torch.empty(1, dtype=torch.int64).random_(0, 2**32 - 1).item())]
    if op == "raw64":
        # from = int64 min, to = None: the full 64-bit range kernel returns random64() as is.
        return [str(torch.empty(1, dtype=torch.int64).random_(-(2**63), None).item())]
    if op == "uniform":
        return [f64(torch.empty(1).uniform_(step["from"], step["to"]).item())]
    if op == "rand":
        return [f64(torch.rand(1).item())]
    if op == "coin":
        return ["1" if bool(torch.rand(1) < step["p"]) else "0"]
    if op == "randint":
        return [str(torch.randint(int(step["low"]), int(step["high"]), size=(1,)).item())]
    if op == "randperm":
        return [",".join(str(v) for v in torch.randperm(step["n"]).tolist())]
    if op == "normal":
        t = torch.empty(step["n"], dtype=torch.float32).normal_(step["mean"], step["std"])
        return [tensor_bits(t)]
    if op == "rrc":
        i, j, h, w = T.RandomResizedCrop.get_params(
            image(3, step["h"], step["w"]), step["scale"], step["ratio"])
        return [str(i), str(j), str(h), str(w)]
    if op == "crop":
        i, j, h, w = T.RandomCrop.get_params(image(3, step["h"], step["w"]), step["size"])
        return [str(i), str(j), str(h), str(w)]
    if op == "jitter":
        t = T.ColorJitter(step["brightness"], step["contrast"], step["saturation"], step["hue"])
        order, b, c, s, h = T.ColorJitter.get_params(t.brightness, t.contrast, t.saturation,
                                                     t.hue)
        return [",".join(str(v) for v in order.tolist())] + [opt(v, f64) for v in (b, c, s, h)]
    if op == "rotation":
        t = T.RandomRotation(step["degrees"])
        return [f64(T.RandomRotation.get_params(t.degrees))]
    if op == "affine":
        t = T.RandomAffine(step["degrees"], step.get("translate"), step.get("scale"),
                           step.get("shear"))
        angle, (tx, ty), scale, (sx, sy) = T.RandomAffine.get_params(
            t.degrees, t.translate, t.scale, t.shear, [step["w"], step["h"]])
        return [f64(angle), str(tx), str(ty), f64(scale), f64(sx), f64(sy)]
    if op == "erasing":
        value = step.get("value")
        img = image(step["c"], step["h"], step["w"])
        i, j, h, w, v = T.RandomErasing.get_params(img, step["scale"], step["ratio"], value)
        # After ten misses get_params hands back the image itself.
        return [str(i), str(j), str(h), str(w), "image" if v is img else tensor_bits(v)]
    if op == "blur":
        t = T.GaussianBlur(step["kernel"], step["sigma"])
        return [f64(T.GaussianBlur.get_params(t.sigma[0], t.sigma[1]))]
    if op == "perspective":
        start, end = T.RandomPerspective.get_params(step["w"], step["h"], step["distortion"])
        return [";".join("%d,%d" % tuple(p) for p in end)]
    raise ValueError("unknown op %r" % op)


def float_bits(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    config = torch.__config__.show()
    marker = "CPU capability usage:"
    capability = config.split(marker)[1].splitlines()[0].strip() if marker in config else "?"
    programs = {}
    for program in request.get("programs", []):
        out = []
        for step in program["steps"]:
            out.extend(step_result(step))
        programs[program["name"]] = out

    def apply(fn, key):
        xs = torch.tensor([float_bits(b) for b in request.get(key, [])], dtype=torch.float32)
        # One call on the whole vector: the vectorised kernel, which a 1-element tensor also runs.
        return [struct.unpack("<I", struct.pack("<f", v))[0] for v in fn(xs).tolist()]

    json.dump({"capability": capability, "programs": programs,
               "log": apply(torch.log, "log"), "exp": apply(torch.exp, "exp")}, sys.stdout)


if __name__ == "__main__":
    main()
