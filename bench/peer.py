"""The Python peer, timed in-process.

peer.py scan ROOT REPEATS     seconds of ImageFolder(ROOT) (median of REPEATS), one per line
peer.py decode ROOT           images/s of torchvision's default loader over every sample
"""
import statistics
import sys
import time

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import default_loader


def main():
    what, root = sys.argv[1], sys.argv[2]
    if what == "scan":
        times = []
        for _ in range(int(sys.argv[3])):
            t = time.perf_counter()
            dataset = ImageFolder(root)
            times.append(time.perf_counter() - t)
        print(f"{statistics.median(times):.4f} {len(dataset.samples)}")
    elif what == "decode":
        dataset = ImageFolder(root)
        t = time.perf_counter()
        for path, _ in dataset.samples:
            default_loader(path)
        elapsed = time.perf_counter() - t
        print(f"{len(dataset.samples) / elapsed:.1f}")


if __name__ == "__main__":
    main()
