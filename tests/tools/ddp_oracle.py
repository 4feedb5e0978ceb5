"""Oracle: what PyTorch's own data-parallel training does, for tst_distributed.

Usage:
  ddp_oracle.py sampler CASES_JSON
      CASES_JSON: a JSON list of [n, world_size, seed, epoch, shuffle, drop_last]. Prints a JSON
      list with, per case, the indices of every rank as
      torch.utils.data.DistributedSampler(range(n), num_replicas=world_size, rank=r,
      shuffle=shuffle, seed=seed, drop_last=drop_last) gives them after set_epoch(epoch).
  ddp_oracle.py buckets ARCH NUM_CLASSES
      DDP's bucket assignment for torchvision's ARCH: prints JSON {"bytes": per parameter,
      "first": dist._compute_bucket_assignment_by_size(params, [1 MiB, 25 MiB]) (the forward
      order, sorted), "reversed": the same with tensor_indices in reverse order (as gradients
      become ready), "single": with [sys.maxsize] (DDP's first step)}.
  ddp_oracle.py init ARCH NUM_CLASSES OUT.pth
      torch.manual_seed(0), torchvision's ARCH, torch.save(model.state_dict(), OUT.pth).
  ddp_oracle.py peer TRAIN_ROOT INIT.pth OUT.pth ARCH BATCH EPOCHS LR MOMENTUM WD SEED TRANSFORM
      Run under torchrun (Gloo, env://): DistributedDataParallel over torchvision's ARCH with
      INIT.pth's weights, ImageFolder(TRAIN_ROOT) with the torchvision source TRANSFORM,
      DistributedSampler(seed=SEED) with set_epoch(e), DataLoader(batch_size=BATCH,
      drop_last=True), SGD(LR, MOMENTUM, WD), float32, contiguous, one thread. Rank 0 writes
      torch.save(model.module.state_dict(), OUT.pth) and OUT.pth.json {"losses": the mean loss
      of every step over all ranks' images}.
  ddp_oracle.py compare A.pth B.pth INIT.pth [PREFIX]
      Two models' weights (a state dict, or a checkpoint of ours with 'model_state_dict'), the
      floating-point tensors whose keys start with PREFIX (default all): prints JSON
      {"max_rel_diff": max over tensors of max |a - b| / max |b|, "moved": the same of b against
      INIT.pth (how far training went), "unmoved_others": whether every other tensor of A equals
      INIT.pth's, "keys": whether A and B have the same keys}.
"""
import json
import os
import sys

import torch
import torch.distributed as dist
import torchvision
from torchvision import transforms  # noqa: F401  (TRANSFORM sources use `transforms.`)


def cmd_sampler(cases_json):
    from torch.utils.data import DistributedSampler
    out = []
    for n, world, seed, epoch, shuffle, drop_last in json.loads(cases_json):
        ranks = []
        for r in range(world):
            sampler = DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=shuffle,
                                         seed=seed, drop_last=drop_last)
            sampler.set_epoch(epoch)
            ranks.append(list(sampler))
        out.append(ranks)
    print(json.dumps(out))


def cmd_buckets(arch, num_classes):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=int(num_classes))
    params = [p for p in model.parameters() if p.requires_grad]
    limits = [1024 * 1024, 25 * 1024 * 1024]
    first, _ = dist._compute_bucket_assignment_by_size(params, limits, [False] * len(params))
    order = list(reversed(range(len(params))))
    rev, _ = dist._compute_bucket_assignment_by_size([params[i] for i in order], limits,
                                                     [False] * len(params), order)
    single, _ = dist._compute_bucket_assignment_by_size(params, [sys.maxsize],
                                                        [False] * len(params))
    print(json.dumps({"bytes": [p.numel() * p.element_size() for p in params],
                      "first": first, "reversed": rev, "single": single}))


def cmd_init(arch, num_classes, out):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=int(num_classes))
    torch.save(model.state_dict(), out)


def cmd_peer(root, init, out, arch, batch, epochs, lr, momentum, wd, seed, transform):
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    dataset = torchvision.datasets.ImageFolder(root, transform=eval(transform))
    model = getattr(torchvision.models, arch)(num_classes=len(dataset.classes))
    model.load_state_dict(torch.load(init, map_location="cpu"))
    model = torch.nn.parallel.DistributedDataParallel(model)
    sampler = torch.utils.data.distributed.DistributedSampler(dataset, seed=int(seed))
    loader = torch.utils.data.DataLoader(dataset, batch_size=int(batch), sampler=sampler,
                                         drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(lr), momentum=float(momentum),
                                weight_decay=float(wd))
    losses = []
    model.train()
    for epoch in range(int(epochs)):
        sampler.set_epoch(epoch)
        for images, labels in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            total = torch.tensor([loss.item() * len(labels), float(len(labels))],
                                 dtype=torch.float64)
            dist.all_reduce(total)
            losses.append((total[0] / total[1]).item())
    if rank == 0:
        torch.save(model.module.state_dict(), out)
        with open(out + ".json", "w") as f:
            json.dump({"losses": losses, "world_size": world}, f)
    dist.destroy_process_group()


def state_dict_of(path):
    value = torch.load(path, map_location="cpu")
    return value["model_state_dict"] if "model_state_dict" in value else value


def cmd_compare(a_path, b_path, init_path, prefix=""):
    a, b, init = state_dict_of(a_path), state_dict_of(b_path), state_dict_of(init_path)
    worst = moved = 0.0
    unmoved_others = True
    for key, value in b.items():
        if not value.dtype.is_floating_point:
            continue
        if not key.startswith(prefix):
            unmoved_others = unmoved_others and torch.equal(a[key], init[key])
            continue
        scale = value.abs().max().item() + 1e-12
        worst = max(worst, (a[key] - value).abs().max().item() / scale)
        moved = max(moved, (value - init[key]).abs().max().item() / scale)
    print(json.dumps({"max_rel_diff": worst, "moved": moved, "unmoved_others": unmoved_others,
                      "keys": list(a.keys()) == list(b.keys())}))


if __name__ == "__main__":
    commands = {"sampler": cmd_sampler, "buckets": cmd_buckets, "init": cmd_init,
                "peer": cmd_peer, "compare": cmd_compare}
    commands[sys.argv[1]](*sys.argv[2:])
