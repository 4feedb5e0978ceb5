"""The Python peer, timed in-process.

peer.py scan ROOT REPEATS     seconds of ImageFolder(ROOT) (median of REPEATS), one per line
peer.py decode ROOT           images/s of torchvision's default loader over every sample
peer.py loader ROOT WORKERS BATCH
                              images/s of one epoch of DataLoader(ImageFolder(ROOT, transform)),
                              shuffled, with the ImageNet training transform
peer.py ckpt-load FILE        seconds of torch.load(FILE, map_location='cpu')
peer.py ckpt-save IN OUT      seconds of torch.save(torch.load(IN), OUT)
peer.py ckpt-make OUT         writes a torchvision resnet50 state dict (random init)
peer.py train ROOT ARCH TRANSFORM WORKERS BATCH THREADS WARMUP STEPS [MODEL_SOURCE]
                              training throughput as a typical script gets it: ImageFolder +
                              DataLoader(shuffle, drop_last) + the model (torchvision's, or
                              SmallCNN from the file MODEL_SOURCE: `ifs-bench-train --small-cnn-source`)
                              + SGD + CrossEntropyLoss in the default memory format. Prints
                              "<images/s over STEPS steps after WARMUP> <peak RSS MB> <peak RSS of
                              one worker MB>"
peer.py train-bf16 ROOT ARCH ...  the same with the tuned recipe PyTorch documents for CPUs with
                              bf16: the model and each batch in channels_last, the forward pass and
                              the loss under torch.autocast("cpu", dtype=torch.bfloat16)
peer.py train-head ROOT ARCH ...  fp32 as `train`, fine-tuning the head only: the backbone's
                              parameters requires_grad=False, its BatchNorm layers in eval mode,
                              SGD over the head's parameters (fc. / classifier.1.)
peer.py ddp ROOT ARCH TRANSFORM BATCH WARMUP STEPS [MODEL_SOURCE]
                              under torchrun: DistributedDataParallel (Gloo) as a typical script
                              writes it, DistributedSampler + DataLoader(batch per process,
                              drop_last, no workers), SGD, torch's threads as torchrun sets them
                              (OMP_NUM_THREADS). Rank 0 prints the images/s of all processes
                              together over STEPS steps after WARMUP
"""
import resource
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
    if what in ("train", "train-bf16", "train-head"):
        train(root, *sys.argv[3:], mode=what)
        return
    if what == "ddp":
        ddp(root, *sys.argv[3:])
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
        if len(sys.argv) > 5:  # another pipeline, as Python source over T
            transform = eval(sys.argv[5], {"T": T})
        t = time.perf_counter()
        dataset = ImageFolder(root, transform=transform)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True,
                                             num_workers=workers)
        images = 0
        for inputs, _ in loader:
            images += inputs.shape[0]
        elapsed = time.perf_counter() - t
        print(f"{images / elapsed:.1f}")


# The small CNN as models.cpp builds it, for when no MODEL_SOURCE is given; the benchmark passes
# the source our library ships (smallCnnPythonSource()), so that both sides train the same model.
SMALL_CNN_SOURCE = """
import torch.nn as nn


class SmallCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
"""


def train(root, arch, transform_code, workers, batch, threads, warmup, steps, model_source=None,
          mode="train"):
    import torch
    import torchvision
    import torchvision.transforms as transforms

    workers, batch, threads = int(workers), int(batch), int(threads)
    warmup, steps = int(warmup), int(steps)
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    transform = eval(transform_code, {"transforms": transforms, "T": transforms})
    dataset = ImageFolder(root, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True,
                                         num_workers=workers, persistent_workers=workers > 0)
    classes = len(dataset.classes)
    if arch == "small_cnn":
        scope = {}
        source = open(model_source).read() if model_source else SMALL_CNN_SOURCE
        exec(source, scope)
        model = scope["SmallCNN"](num_classes=classes)
    else:
        model = getattr(torchvision.models, arch)(num_classes=classes)
    criterion = torch.nn.CrossEntropyLoss()
    params = model.parameters()
    bf16 = mode == "train-bf16"
    if mode == "train-head":
        head = "classifier.1." if arch in ("small_cnn", "mobilenet_v2") else "fc."
        params = []
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(head))
            if name.startswith(head):
                params.append(p)
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()
    if mode == "train-head":
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    if bf16:
        model = model.to(memory_format=torch.channels_last)

    done, running_loss, t0 = 0, 0.0, time.perf_counter()
    while done < warmup + steps:
        for inputs, targets in loader:
            optimizer.zero_grad()
            if bf16:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = criterion(model(inputs), targets)
            else:
                loss = criterion(model(inputs), targets)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            done += 1
            if done == warmup:
                t0 = time.perf_counter()
            if done == warmup + steps:
                break
    elapsed = time.perf_counter() - t0
    del loader  # joins the workers, so that RUSAGE_CHILDREN counts them
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if workers else 0
    print(f"{steps * batch / elapsed:.2f} {peak:.0f} {worker_peak:.0f}")


def ddp(root, arch, transform_code, batch, warmup, steps, model_source=None):
    import torch
    import torch.distributed as dist
    import torchvision
    from torchvision import transforms  # noqa: F401  (the transform source uses it)

    batch, warmup, steps = int(batch), int(warmup), int(steps)
    dist.init_process_group("gloo")
    world = dist.get_world_size()
    dataset = ImageFolder(root, transform=eval(transform_code))
    if arch == "small_cnn":
        namespace = {}
        exec(open(model_source).read(), namespace)
        model = namespace["SmallCNN"](num_classes=len(dataset.classes))
    else:
        model = getattr(torchvision.models, arch)(num_classes=len(dataset.classes))
    model = torch.nn.parallel.DistributedDataParallel(model)
    sampler = torch.utils.data.distributed.DistributedSampler(dataset, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=sampler,
                                         drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    done, epoch, t0 = 0, 0, None
    while done < warmup + steps:
        sampler.set_epoch(epoch)
        epoch += 1
        for images, labels in loader:
            if done == warmup:
                dist.barrier()
                t0 = time.perf_counter()
            optimizer.zero_grad()
            criterion(model(images), labels).backward()
            optimizer.step()
            done += 1
            if done == warmup + steps:
                break
    dist.barrier()
    elapsed = time.perf_counter() - t0
    if dist.get_rank() == 0:
        print(f"{steps * batch * world / elapsed:.2f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
