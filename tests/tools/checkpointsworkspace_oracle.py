"""Checkpoints for tst_checkpointtreemodel and tst_checkpointsworkspace, made by real torch.

make OUT: resnet18.pt (a plain state dict), dp_cuda.pth (a DataParallel training checkpoint whose
storages carry the location tag cuda:0), optim.pt (an SGD optimizer's state dict), nested.pt
(a stage dict: model, EMA copy, epoch, hyper-parameters), stats.pt (tensors with known values),
shared.pt (views, a transposed and a strided view, tied parameters, a small slice of a large
storage: tensors that share storages).
equal A B: torch.load(A, weights_only=True) equals torch.load(B) key by key (prints OK).
totals FILE: what torch.load(FILE) holds, as JSON: {"tensors", "elements", "storage_bytes": the
distinct storages' bytes, "view_bytes": numel() * element_size() summed over the tensors}.
"""
import collections
import json
import sys

import torch
import torchvision


def make(out):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    torch.save(model.state_dict(), f"{out}/resnet18.pt")
    dp = torch.nn.DataParallel(model)
    orig = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        torch.save({"epoch": 90, "arch": "resnet18", "state_dict": dp.state_dict()},
                   f"{out}/dp_cuda.pth")
    finally:
        torch.serialization.location_tag = orig
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    optimizer.step()
    torch.save(optimizer.state_dict(), f"{out}/optim.pt")
    small = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    torch.save({"stage": 2, "model": small.state_dict(),
                "ema": {"model": small.state_dict(), "decay": 0.999},
                "hparams": {"lr": 0.01, "sizes": [224, 256]}}, f"{out}/nested.pt")
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, float("nan"), float("inf"), 0.0])
    torch.save(collections.OrderedDict(
        f32=values, f16=values.half(), bf16=values.bfloat16(), f64=values.double(),
        i64=torch.arange(-3, 4)), f"{out}/stats.pt")
    w = torch.arange(100, dtype=torch.float32).reshape(10, 10)
    emb = torch.nn.Parameter(torch.randn(5, 4))
    torch.save({"w": w, "w_t": w.t(), "rows": w[2:5], "column": w[:, 3],
                "embedding": emb, "lm_head": emb, "half": torch.ones(7, dtype=torch.float16),
                "slice": torch.zeros(1000)[10:20], "nested": {"first_row": w[0]}},
               f"{out}/shared.pt")


def tensors_in(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_in(item)


def totals(path):
    tensors = list(tensors_in(torch.load(path)))
    storages = {t.storage().data_ptr(): t.storage().nbytes() for t in tensors}
    print(json.dumps({"tensors": len(tensors), "elements": sum(t.numel() for t in tensors),
                      "storage_bytes": sum(storages.values()),
                      "view_bytes": sum(t.numel() * t.element_size() for t in tensors)}))


def equal(a, b):
    x = torch.load(a, weights_only=True)
    y = torch.load(b, map_location="cpu")
    if isinstance(y, dict) and "state_dict" in y:
        y = y["state_dict"]
    assert list(x.keys()) == list(y.keys()), (list(x.keys())[:3], list(y.keys())[:3])
    for k in x:
        assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
        assert torch.equal(x[k], y[k]), k
    print("OK", len(x), type(x).__name__)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "totals":
        totals(sys.argv[2])
    else:
        equal(sys.argv[2], sys.argv[3])
