#!/usr/bin/python3
"""Writes a hostile ImageFolder corpus of real images made with PIL.

Usage: make_hostile_corpus.py OUT [--split]

Without --split, OUT is a plain ImageFolder root (OUT/<class>/<file>); with --split it holds
OUT/train/<class>/... and OUT/val/<class>/..., and val repeats a train file byte for byte.

Prints one JSON object: {"files": [{"path": "train/normal/rgb.jpg", "kinds": [...]}, ...]}
where "kinds" are the health-check kinds the file is built to trigger (the test's expectations;
whether PIL can load a file is asked of PIL separately, by health_pil_oracle.py).
"""

import io
import json
import os
import struct
import sys
import zlib

from PIL import Image

FILES = []


def record(path, kinds=()):
    FILES.append({"path": path, "kinds": list(kinds)})


def write_bytes(root, rel, data, kinds=()):
    full = os.path.join(root, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)
    record(rel, kinds)


def save(root, rel, image, kinds=(), **params):
    buf = io.BytesIO()
    fmt = params.pop("format", None)
    if fmt is None:
        fmt = Image.registered_extensions()[os.path.splitext(rel)[1].lower()]
    image.save(buf, format=fmt, **params)
    write_bytes(root, rel, buf.getvalue(), kinds)
    return buf.getvalue()


def encode(image, fmt, **params):
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def gradient(mode, w, h, seed=0):
    """A smooth but non-trivial picture in `mode` (deterministic)."""
    rgb = Image.new("RGB", (w, h))
    px = rgb.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = ((x * 255 // max(1, w - 1) + seed) % 256,
                        (y * 255 // max(1, h - 1) + 3 * seed) % 256,
                        ((x + y) * 7 + 5 * seed) % 256)
    return rgb if mode == "RGB" else rgb.convert(mode)


def noise(w, h, seed):
    """Incompressible pixels, so that the entropy-coded data is long enough to cut."""
    data = bytearray(w * h * 3)
    state = seed * 2654435761 % 2**32 or 1
    for i in range(len(data)):
        state = (1103515245 * state + 12345) % 2**31
        data[i] = (state >> 16) & 0xFF
    return Image.frombytes("RGB", (w, h), bytes(data))


def png_chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def raw_png(w, h, bit_depth, color_type, rows, compress=True):
    """A PNG written by hand (PIL cannot save 16-bit RGB)."""
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + (png_chunk(b"IDAT", zlib.compress(raw)) if compress else b"")
            + png_chunk(b"IEND", b""))


def exif_orientation(value, big_endian):
    """Raw APP1 Exif payload with one IFD0 entry: Orientation (0x0112, SHORT)."""
    if big_endian:
        tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
        tiff += struct.pack(">HHIHH", 0x0112, 3, 1, value, 0) + struct.pack(">I", 0)
    else:
        tiff = b"II\x2a\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
        tiff += struct.pack("<HHIHH", 0x0112, 3, 1, value, 0) + struct.pack("<I", 0)
    return b"Exif\x00\x00" + tiff


def make_split(root, prefix, split_index):
    p = (prefix + "/") if prefix else ""
    s = split_index  # varies the pixels between splits, so only the planted copies are duplicates

    # normal/: what torchvision loads without surprise (RGB, 8 bits, right extension).
    save(root, p + "normal/rgb.jpg", gradient("RGB", 64, 48, s), quality=90)
    save(root, p + "normal/rgb.png", gradient("RGB", 33, 17, s))
    save(root, p + "normal/rgb.bmp", gradient("RGB", 20, 10, s))
    save(root, p + "normal/rgb_b.bmp", gradient("RGB", 20, 10, s + 100))  # same size, other bytes
    save(root, p + "normal/rgb.webp", gradient("RGB", 30, 20, s), quality=80)
    save(root, p + "normal/rgb_lossless.webp", gradient("RGB", 30, 20, s), lossless=True)
    save(root, p + "normal/rgb.ppm", gradient("RGB", 12, 9, s))
    save(root, p + "normal/rgb.tif", gradient("RGB", 16, 12, s))
    save(root, p + "normal/caf\u00e9 photo.png", gradient("RGB", 10, 10, s + 7))
    save(root, p + "normal/exif_rot6_le.jpg", gradient("RGB", 40, 24, s + 1), quality=90,
         exif=exif_orientation(6, big_endian=False))
    save(root, p + "normal/exif_rot8_be.jpg", gradient("RGB", 24, 40, s + 2), quality=90,
         exif=exif_orientation(8, big_endian=True))
    save(root, p + "normal/multi_idat.png", noise(200, 150, 4 + s))  # IDAT in several chunks
    save(root, p + "normal/progressive.jpg", gradient("RGB", 50, 30, s + 3), quality=85,
         progressive=True)

    # odd/: PIL loads them, but they deserve a look.
    save(root, p + "odd/gray.jpg", gradient("L", 40, 30, s), kinds=["UnusualMode"], quality=90)
    save(root, p + "odd/gray.png", gradient("L", 21, 13, s), kinds=["UnusualMode"])
    save(root, p + "odd/gray_alpha.png", gradient("LA", 21, 13, s), kinds=["UnusualMode"])
    rgba = gradient("RGBA", 32, 16, s)
    alpha = Image.new("L", rgba.size)
    alpha.putdata([(x * 37) % 256 for x in range(rgba.size[0] * rgba.size[1])])  # some fully clear
    rgba.putalpha(alpha)
    save(root, p + "odd/rgba.png", rgba, kinds=["UnusualMode"])
    save(root, p + "odd/rgba.webp", rgba, kinds=["UnusualMode"], quality=90)
    save(root, p + "odd/palette.png", gradient("RGB", 24, 24, s).quantize(16),
         kinds=["UnusualMode"])
    pal_trns = gradient("RGB", 24, 24, s + 5).quantize(8)
    save(root, p + "odd/palette_trns.png", pal_trns, kinds=["UnusualMode"], transparency=0)
    save(root, p + "odd/palette.gif", gradient("RGB", 24, 20, s).quantize(32),
         kinds=["UnusualMode"])
    save(root, p + "odd/palette.bmp", gradient("RGB", 16, 16, s).quantize(16),
         kinds=["UnusualMode"])
    save(root, p + "odd/bilevel.png", gradient("L", 19, 11, s).convert("1"),
         kinds=["UnusualMode"])
    save(root, p + "odd/gray.pgm", gradient("L", 12, 9, s), kinds=["UnusualMode"])
    # 16-bit gray: values from 0 to 65535, some at or below 255 (PIL's convert("RGB") clips).
    w, h = 16, 8
    rows = [b"".join(struct.pack(">H", (x * 4096 + y * 37 + s) if y < 4 else (x * 17 + y + s))
                     for x in range(w)) for y in range(h)]
    write_bytes(root, p + "odd/gray16.png", raw_png(w, h, 16, 0, rows), kinds=["UnusualMode"])
    # 16-bit RGB, written by hand.
    w, h = 10, 9
    rows = [b"".join(struct.pack(">HHH", x * 6553 + s, y * 7000 + 255, (x * y * 999) % 65536)
                     for x in range(w)) for y in range(h)]
    write_bytes(root, p + "odd/rgb16.png", raw_png(w, h, 16, 2, rows), kinds=["UnusualMode"])
    pgm16 = b"P5\n8 8\n65535\n" + b"".join(struct.pack(">H", i * 1000 + s) for i in range(64))
    write_bytes(root, p + "odd/gray16.pgm", pgm16, kinds=["UnusualMode"])
    cmyk = Image.new("CMYK", (32, 24))
    cpx = cmyk.load()
    for y in range(24):
        for x in range(32):
            cpx[x, y] = (x * 8, y * 10, (x * y + s) % 256, (x + y) * 4 % 256)
    save(root, p + "odd/cmyk.jpg", cmyk, kinds=["UnusualMode"], quality=95)
    save(root, p + "odd/tiny.png", gradient("RGB", 4, 4, s), kinds=["TinyDimensions"])
    write_bytes(root, p + "odd/png_named.jpg", encode(gradient("RGB", 14, 14, s + 9), "PNG"),
                kinds=["WrongExtension"])
    dup = encode(gradient("RGB", 18, 18, s + 11), "PNG")
    write_bytes(root, p + "odd/dup_a.png", dup)
    write_bytes(root, p + "odd/dup_b.png", dup, kinds=["Duplicate"])

    # PIL skips the IDAT checksums (libpng does not): loadable.
    good = bytearray(encode(gradient("RGB", 20, 20, s + 13), "PNG"))
    idat = good.index(b"IDAT")
    length = struct.unpack(">I", good[idat - 4:idat])[0]
    good[idat + 4 + length] ^= 0xFF
    write_bytes(root, p + "normal/bad_idat_crc.png", bytes(good))

    # broken/: files torchvision's loader is expected to fail on (PIL decides, not this list).
    big_jpeg = encode(noise(160, 120, 1 + s), "JPEG", quality=95)
    write_bytes(root, p + "broken/truncated.jpg", big_jpeg[: len(big_jpeg) * 6 // 10],
                kinds=["Truncated"])
    write_bytes(root, p + "broken/no_eoi.jpg", big_jpeg[:-2], kinds=["Truncated"])
    big_png = encode(noise(120, 90, 2 + s), "PNG")
    write_bytes(root, p + "broken/truncated.png", big_png[: len(big_png) * 6 // 10],
                kinds=["Truncated"])
    write_bytes(root, p + "broken/no_iend.png", big_png[:-12], kinds=["Truncated"])
    write_bytes(root, p + "broken/header_only.jpg", big_jpeg[:200], kinds=["Truncated"])
    big_webp = encode(noise(64, 48, 3 + s), "WEBP", quality=90)
    write_bytes(root, p + "broken/truncated.webp", big_webp[: len(big_webp) * 7 // 10],
                kinds=["Truncated"])
    write_bytes(root, p + "broken/empty.jpg", b"", kinds=["ZeroByte"])
    write_bytes(root, p + "broken/text.jpg", b"This is not an image, just some text.\n",
                kinds=["Unreadable"])
    write_bytes(root, p + "broken/garbage.png", bytes((i * 151 + 7) % 256 for i in range(300)),
                kinds=["Unreadable"])
    write_bytes(root, p + "broken/huge.png", raw_png(100000, 100000, 8, 2, [], compress=False),
                kinds=["HugeDimensions"])


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    root = args[0]
    split = "--split" in args
    os.makedirs(root, exist_ok=True)
    if split:
        make_split(root, "train", 0)
        make_split(root, "val", 50)
        # A byte-identical copy across splits: leakage between train and val.
        with open(os.path.join(root, "train/normal/rgb.jpg"), "rb") as f:
            write_bytes(root, "val/normal/leaked.jpg", f.read(), kinds=["Duplicate"])
    else:
        make_split(root, "", 0)
    json.dump({"files": FILES}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
