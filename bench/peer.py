"""The Python peer, timed in-process.

peer.py scan ROOT REPEATS     seconds of ImageFolder(ROOT) (median of REPEATS), one per line
peer.py decode ROOT           images/s of torchvision's default loader over every sample
peer.py loader ROOT WORKERS BATCH
                              images/s of one epoch of DataLoader(ImageFolder(ROOT, transform)),
                              shuffled, with the ImageNet training transform
peer.py ckpt-load FILE        seconds of torch.load(FILE, map_location='cpu')
peer.py ckpt-save IN OUT      seconds of torch.save(torch.load(IN), OUT)
peer.py ckpt-make OUT         writes a torchvision resnet50 state dict (random init)
"""
import statistics
import sys
import time

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import default_loader


def main():
    what, root = sys.argv[1], sys.argv[2]
    if what.startswith("ckpt-"):
        import torch

        if what == "ckpt-make":
            import torchvision

            torch.save(torchvision.models.resnet50().state_dict(), root)
        elif what == "ckpt-load":
            t = time.perf_counter()
            torch.load(root, map_location="cpu")
            print(f"{time.perf_counter() - t:.4f}")
        elif what == "ckpt-save":
            state = torch.load(root, map_location="cpu")
            t = time.perf_counter()
            torch.save(state, sys.argv[3])
            print(f"{time.perf_counter() - t:.4f}")
        return
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
    elif what == "loader":
        import torch
        import torchvision.transforms as T

        workers, batch = int(sys.argv[3]), int(sys.argv[4])
        transform = T.Compose([
            T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        t = time.perf_counter()
        dataset = ImageFolder(root, transform=transform)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True,
                                             num_workers=workers)
        images = 0
        for inputs, _ in loader:
            images += inputs.shape[0]
        elapsed = time.perf_counter() - t
        print(f"{images / elapsed:.1f}")


if __name__ == "__main__":
    main()
