#!/usr/bin/env python3
"""Writes a small photo-like ImageFolder for screenshots: ROOT/{cat,dog}/NNN.jpg.

Each image is a colourful banded background with a cat or dog face drawn at a seeded place and
size, in a few of the sizes cameras and web images come in (640×480, 500×375, 480×640), so that
the Transforms workspace shows what RandomResizedCrop and friends do to real-sized pictures.
Deterministic (seeded). Needs numpy and PIL (/usr/bin/python3 has both).

Usage: scripts/make_photo_dataset.py ROOT [--per-class N]
"""
import argparse
import os
import random

import numpy as np
from PIL import Image, ImageDraw

SIZES = [(640, 480), (500, 375), (480, 640), (640, 427)]


def background(width, height, rng):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    t = (x * np.cos(angle) + y * np.sin(angle)) / 40.0
    phase = rng.uniform(0, 2 * np.pi)
    rgb = np.stack([np.sin(t + phase), np.sin(t + phase + 2.1), np.sin(t + phase + 4.2)], -1)
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 0.08, rgb.shape)
    return Image.fromarray(np.uint8(np.clip((rgb + noise) * 0.5 + 0.5, 0, 1) * 255))


def face(draw, kind, cx, cy, r, rng):
    colour = (230, 150, 60) if kind == 'cat' else (140, 95, 60)
    if kind == 'cat':  # pointed ears
        for side in (-1, 1):
            draw.polygon([(cx + side * r * 0.9, cy - r * 0.2), (cx + side * r * 0.7, cy - r * 1.5),
                          (cx + side * r * 0.1, cy - r * 0.8)], fill=colour)
    else:  # floppy ears
        for side in (-1, 1):
            draw.ellipse([cx + side * r * 0.8 - r * 0.35, cy - r * 0.6,
                          cx + side * r * 0.8 + r * 0.35, cy + r * 0.6], fill=(90, 60, 40))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    for side in (-1, 1):
        ex, ey, er = cx + side * r * 0.35, cy - r * 0.1, r * 0.1
        draw.ellipse([ex - er, ey - er, ex + er, ey + er], fill=(20, 20, 20))
    if kind == 'dog':
        draw.ellipse([cx - r * 0.18, cy + r * 0.25, cx + r * 0.18, cy + r * 0.45], fill=(20, 20, 20))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('root')
    parser.add_argument('--per-class', type=int, default=12)
    args = parser.parse_args()
    rng = random.Random(20261207)
    for kind in ('cat', 'dog'):
        os.makedirs(os.path.join(args.root, kind), exist_ok=True)
        for i in range(args.per_class):
            width, height = SIZES[i % len(SIZES)]
            image = background(width, height, rng)
            r = rng.uniform(0.18, 0.3) * min(width, height)
            cx = rng.uniform(r * 1.2, width - r * 1.2)
            cy = rng.uniform(r * 1.6, height - r * 1.3)
            draw = ImageDraw.Draw(image)
            horizon = cy + r * 1.1
            draw.line([(0, horizon), (width, horizon + rng.uniform(-40, 40))], fill=(255, 255, 255))
            face(draw, kind, cx, cy, r, rng)
            image.save(os.path.join(args.root, kind, f'{i:03d}.jpg'), quality=90)


if __name__ == '__main__':
    main()
