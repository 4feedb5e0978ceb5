#!/usr/bin/env python3
"""Oracle for perceptual hashes (tests/tst_nearduplicates.cpp).

  hash FILE...    prints one line per file: the 64-bit pHash in hex, computed with PIL and numpy
                  as src/dataset/nearduplicates.h defines it: Image.open(f).convert("RGB")
                  .convert("L").resize((32, 32), Image.BILINEAR), the DCT-II of the 32 x 32 pixels
                  (cos((2x + 1) u pi / 64), unnormalised), the coefficients (v, u) for v, u in
                  1..8, bit (v-1)*8 + (u-1) set when the coefficient is above their median.
"""
import sys

import numpy as np
from PIL import Image


def phash(path):
    img = Image.open(path).convert("RGB").convert("L").resize((32, 32), Image.BILINEAR)
    pixels = np.asarray(img, dtype=np.float64)
    x = np.arange(32)
    basis = np.array([np.cos((2 * x + 1) * u * np.pi / 64.0) for u in range(1, 9)])  # 8 x 32
    coefficients = basis @ pixels @ basis.T  # [v][u]: rows (y) by v, columns (x) by u
    flat = coefficients.reshape(-1)
    median = np.median(flat)
    value = 0
    for i, c in enumerate(flat):
        if c > median:
            value |= 1 << i
    return value


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "hash":
        print(__doc__, file=sys.stderr)
        return 2
    for path in sys.argv[2:]:
        print(f"{phash(path):016x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
