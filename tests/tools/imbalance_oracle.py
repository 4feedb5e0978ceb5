"""Oracle: what PyTorch makes of imbalanced-data training (class-weighted loss, weighted sampler).

Usage:
  imbalance_oracle.py loss CASES.json
      CASES.json: [{"classes": C, "logits": [row-major floats], "labels": [...], "weights": [...]
      or [], "smoothing": s}, ...]. Prints a JSON list: per case the float value of
      F.cross_entropy(logits, labels, weight=torch.tensor(weights) or None, label_smoothing=s),
      and the same with reduction="sum" divided by the targets' weights (the denominator, shown).
  imbalance_oracle.py multinomial CASES.json
      CASES.json: [{"weights": [...], "count": n, "seed": "uint64"}, ...]. Prints per case
      list(WeightedRandomSampler(weights, n, replacement=True,
      generator=torch.Generator().manual_seed(seed))).
  imbalance_oracle.py sampler TRAIN_ROOT SEED EPOCHS
      The weighted sampler of a training run on ImageFolder(TRAIN_ROOT), as a Python script
      writes it: per-sample weights 1 / count of its class, num_samples = len(dataset),
      replacement=True, and for epoch e (0-based) the generator seeded with
      epoch_order_seed(SEED, e). Prints {"weights": [...], "epochs": [[indices], ...]}.
"""
import collections
import json
import sys

import torch
import torchvision
from torch.utils.data import WeightedRandomSampler

MASK = (1 << 64) - 1


def split_mix(x):
    """SplitMix64's finaliser, as the loader's seeds are derived (batchloader.cpp)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def epoch_order_seed(seed, epoch):
    """The seed of epoch `epoch`'s (0-based) order generator for the run seed `seed`
    (epochOrderSeed() in transforms/batchloader.h)."""
    return split_mix(split_mix(int(seed) ^ ((epoch & 0xFFFFFFFF) << 32)) ^ MASK)


def sample_weights(targets):
    """1 / n_class per sample, in float64 as Python computes it."""
    counts = collections.Counter(targets)
    return [1.0 / counts[t] for t in targets]


def weighted_order(weights, seed, epoch):
    """Epoch `epoch`'s order under the weighted sampler of a run seeded with `seed`."""
    generator = torch.Generator().manual_seed(epoch_order_seed(seed, epoch))
    return list(WeightedRandomSampler(weights, len(weights), replacement=True, generator=generator))


def cmd_loss(path):
    out = []
    for case in json.load(open(path)):
        classes = case["classes"]
        logits = torch.tensor(case["logits"], dtype=torch.float32).reshape(-1, classes)
        labels = torch.tensor(case["labels"], dtype=torch.int64)
        weight = torch.tensor(case["weights"]) if case["weights"] else None
        loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight,
                                                 label_smoothing=case["smoothing"])
        denominator = weight[labels].sum().item() if weight is not None else len(labels)
        out.append({"loss": loss.item(), "denominator": denominator})
    print(json.dumps(out))


def cmd_multinomial(path):
    out = []
    for case in json.load(open(path)):
        generator = torch.Generator().manual_seed(int(case["seed"]))
        sampler = WeightedRandomSampler(case["weights"], case["count"], replacement=True,
                                        generator=generator)
        out.append(list(sampler))
    print(json.dumps(out))


def cmd_sampler(train_root, seed, epochs):
    dataset = torchvision.datasets.ImageFolder(train_root)
    weights = sample_weights(dataset.targets)
    print(json.dumps({"weights": weights,
                      "epochs": [weighted_order(weights, seed, e) for e in range(int(epochs))]}))


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {"loss": cmd_loss, "multinomial": cmd_multinomial, "sampler": cmd_sampler}[command](*arguments)
