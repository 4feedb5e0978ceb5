#!/usr/bin/python3
"""Writes a real 9500x9500 1-bit PNG (90,250,000 px) to the given path.

That is above PIL's decompression-bomb warning limit (Image.MAX_IMAGE_PIXELS = 89,478,485) but
below its error limit (twice that): torchvision's loader still opens it, with a
DecompressionBombWarning. It compresses to a few kilobytes.

Usage: health_large_png.py OUT.png
"""

import os
import sys

from PIL import Image


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(os.path.dirname(os.path.abspath(sys.argv[1])), exist_ok=True)
    image = Image.new("1", (9500, 9500), 1)
    image.paste(0, (100, 100, 9400, 200))  # a black bar, so it is not entirely blank
    image.save(sys.argv[1], format="PNG")


if __name__ == "__main__":
    main()
