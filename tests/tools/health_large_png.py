#!/usr/bin/python3
"""Writes a real 9500x9500 1-bit PNG (90,250,000 px) to the given path.

That is above PIL's decompression-bomb warning limit (Image.MAX_IMAGE_PIXELS = 89,478,485) but
below its error limit (twice that): torchvision's loader still opens it, with a
DecompressionBombWarning. It compresses to a few kilobytes. With W H, the image is W x H instead
(14351 x 12471 is just beyond the error limit: PIL raises DecompressionBombError).

Usage: health_large_png.py OUT.png [W H]
"""

import os
import sys

from PIL import Image


def main():
    if len(sys.argv) not in (2, 4):
        sys.exit(__doc__)
    width, height = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) == 4 else (9500, 9500)
    os.makedirs(os.path.dirname(os.path.abspath(sys.argv[1])), exist_ok=True)
    image = Image.new("1", (width, height), 1)
    image.paste(0, (100, 100, width - 100, 200))  # a black bar, so it is not entirely blank
    image.save(sys.argv[1], format="PNG")


if __name__ == "__main__":
    main()
