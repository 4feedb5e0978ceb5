"""Makes the benchmark trees (once; reused while they exist).

make_data.py scan-tree ROOT CLASSES FILES_PER_CLASS
    ROOT/<class>/<n>.jpg empty files: ImageFolder only lists files, it never opens them.
make_data.py jpeg-tree ROOT CLASSES IMAGES_PER_CLASS
    real 500x375 JPEGs (quality 90) with varied content, for decoding benchmarks.
"""
import os
import sys


def scan_tree(root, classes, per_class):
    for c in range(classes):
        d = os.path.join(root, f"n{c:08d}")
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            open(os.path.join(d, f"img_{i:06d}.jpg"), "wb").close()


def jpeg_tree(root, classes, per_class):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500]
    for c in range(classes):
        d = os.path.join(root, f"class_{c:03d}")
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            fx, fy, phase = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6.28)]
            base = np.sin(xx * fx + phase) * np.cos(yy * fy) * 100 + 128
            noise = rng.normal(0, 18, (375, 500, 3))
            img = np.clip(base[..., None] * rng.uniform(0.4, 1.0, 3) + noise, 0, 255)
            Image.fromarray(img.astype(np.uint8), "RGB").save(
                os.path.join(d, f"{i:05d}.jpg"), quality=90)


if __name__ == "__main__":
    kind, root, classes, per_class = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    marker = os.path.join(root, f".complete-{kind}-{classes}-{per_class}")
    if os.path.exists(marker):
        sys.exit(0)
    {"scan-tree": scan_tree, "jpeg-tree": jpeg_tree}[kind](root, classes, per_class)
    open(marker, "w").close()
