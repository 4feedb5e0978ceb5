"""Oracle: fastai v2's Learner.lr_find(), reimplemented in plain PyTorch, on our model and batches.

Usage:
  lrfind_oracle.py SPEC.json
      SPEC.json (written by tests/tst_lrfinder.cpp) names the model ("arch", "num_classes",
      "smallcnn_source" for small_cnn), our initial weights ("initial", a state dict), the training
      ImageFolder ("train_root") and its transform ("transform", torchvision source), the compute
      threads and memory format of our run ("threads", "channels_last"), the optimizer
      ("optimizer": sgd | adam | adamw with "momentum", "nesterov", "weight_decay", "betas",
      "eps"), the seed of torch's generator at the ramp's start ("seed": dropout draws from it),
      lr_find()'s arguments ("start_lr", "end_lr", "num_it", "stop_div", "beta") and our ramp's
      batches ("batches": per step, the files of the batch in order).
      Runs fastai's algorithm step by step on those batches and prints JSON {"lrs", "losses",
      "smoothed", "stop", "suggestions": {name: {"lr", "point_lr", "point_loss"}}, "state_changed":
      whether the model's state after the ramp differs from the initial weights, "restored_equal":
      whether restoring gives the initial weights back}.

What is fastai's (fastai/callback/schedule.py, fastai/learner.py, v2):
  - SchedExp: lr = start * (end / start) ** (train_iter / num_it), set before each batch;
    LRFinder raises num_it below 6 to 6.
  - Recorder + AvgSmoothLoss(beta=0.98): val = torch.lerp(loss, val, beta) on float32 tensors,
    value = val / (1 - beta ** count); the recorder appends the rate and the smoothed value.
  - LRFinder.after_batch: best = min(best, smooth); stop when smooth > 4 * best (stop_div) or
    train_iter >= num_it. A NaN compares false: fastai runs on to num_it with a NaN curve.
  - lr_find(): tensor(lrs[num_it//10:-5]), tensor(losses[num_it//10:-5]), cut at the first NaN;
    steep, minimum and valley as written there.
"""
import collections
import json
import math
import os
import sys

import torch
import torchvision
from torchvision import transforms  # noqa: F401  (the transform source uses `transforms.`)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from training_oracle import build, load_weights_only  # noqa: E402


class AvgSmoothLoss:
    def __init__(self, beta=0.98):
        self.beta = beta
        self.count, self.val = 0, torch.tensor(0.)

    def accumulate(self, loss):
        self.count += 1
        self.val = torch.lerp(loss.detach().mean(), self.val, self.beta)

    @property
    def value(self):
        return self.val / (1 - self.beta ** self.count)


def sched_exp(start, end, pos):
    return start * (end / start) ** pos


def valley(lrs, losses, num_it):
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), (float(lrs[idx]), losses[idx])


def minimum(lrs, losses, num_it):
    lr_min = lrs[losses.argmin()].item()
    loss_idx = losses[min(range(len(lrs)), key=lambda i: abs(lrs[i] - lr_min))]
    return lr_min / 10, (lr_min, loss_idx)


def steep(lrs, losses, num_it):
    grads = (losses[1:] - losses[:-1]) / (lrs[1:].log() - lrs[:-1].log())
    lr_steep = lrs[grads.argmin()].item()
    loss_idx = losses[min(range(len(lrs)), key=lambda i: abs(lrs[i] - lr_steep))]
    return lr_steep, (lr_steep, loss_idx)


def suggestions(recorded_lrs, recorded_losses, num_it):
    lrs = torch.tensor(recorded_lrs[num_it // 10:-5])
    losses = torch.tensor(recorded_losses[num_it // 10:-5])
    nan_idxs = torch.nonzero(torch.isnan(losses.view(-1)))
    if len(nan_idxs) > 0:
        drop_idx = min(nan_idxs)
        lrs = lrs[:drop_idx]
        losses = losses[:drop_idx]
    if len(lrs) < 2:
        return {}
    out = {}
    for func in (steep, minimum, valley):
        lr, (point_lr, point_loss) = func(lrs, losses, num_it)
        out[func.__name__] = {"lr": lr, "point_lr": float(point_lr), "point_loss": float(point_loss)}
    return out


def make_optimizer(spec, params):
    name = spec["optimizer"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=spec["start_lr"], momentum=spec["momentum"],
                               nesterov=spec["nesterov"], weight_decay=spec["weight_decay"])
    kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return kind(params, lr=spec["start_lr"], betas=tuple(spec["betas"]), eps=spec["eps"],
                weight_decay=spec["weight_decay"])


def main(spec_path):
    spec = json.load(open(spec_path))
    torch.set_num_threads(int(spec["threads"]))
    layout = torch.channels_last if spec["channels_last"] else torch.contiguous_format
    transform = eval(spec["transform"], {"transforms": transforms})  # our test's source
    dataset = torchvision.datasets.ImageFolder(spec["train_root"], transform=transform)
    index_of = {os.path.abspath(path): i for i, (path, _) in enumerate(dataset.samples)}

    model = build(spec["arch"], int(spec["num_classes"]), spec.get("smallcnn_source"))
    initial = load_weights_only(spec["initial"])[0]
    model.load_state_dict(initial, strict=True)
    model = model.to(memory_format=layout)
    optimizer = make_optimizer(spec, model.parameters())
    initial_opt = optimizer.state_dict()

    # learn.lr_find(start_lr, end_lr, num_it, stop_div)
    num_it = spec["num_it"]
    finder_num_it = max(num_it, 6)
    smooth = AvgSmoothLoss(spec["beta"])
    recorded_lrs, recorded_losses, raw_losses = [], [], []
    best_loss = float("inf")
    stop = "completed"
    torch.manual_seed(spec["seed"])  # our ramp's draws (dropout) start from the run's seed
    model.train()
    train_iter = 0
    for files in spec["batches"]:
        lr = sched_exp(spec["start_lr"], spec["end_lr"], train_iter / finder_num_it)
        for group in optimizer.param_groups:
            group["lr"] = lr
        items = [dataset[index_of[os.path.abspath(f)]] for f in files]
        inputs = torch.stack([x for x, _ in items]).contiguous(memory_format=layout)
        labels = torch.tensor([y for _, y in items])
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs).float(), labels)
        loss.backward()
        optimizer.step()
        train_iter += 1
        smooth.accumulate(loss)
        smooth_loss = smooth.value
        recorded_lrs.append(lr)
        recorded_losses.append(smooth_loss)
        raw_losses.append(loss.item())
        if smooth_loss < best_loss:
            best_loss = smooth_loss
        if smooth_loss > 4 * best_loss and spec["stop_div"]:
            stop = "diverged"
            break
        if train_iter >= finder_num_it:
            break
    else:
        if train_iter < finder_num_it:
            stop = "out-of-batches"
    if stop == "out-of-batches" and math.isnan(recorded_losses[-1].item()):
        # fastai would run on with a NaN curve (ours stops at the first NaN): its records.
        stop = "not-finite"
        recorded_losses += [torch.tensor(float("nan"))] * (finder_num_it - len(recorded_losses))
        recorded_lrs += [sched_exp(spec["start_lr"], spec["end_lr"], i / finder_num_it)
                         for i in range(len(recorded_lrs), finder_num_it)]
    steps = len(raw_losses)
    state_changed = any(not torch.equal(t, initial[k]) for k, t in model.state_dict().items())
    # after_fit: learn.load('_tmp', with_opt=True)
    model.load_state_dict(initial)
    optimizer.load_state_dict(initial_opt)
    restored_equal = all(torch.equal(t, initial[k]) for k, t in model.state_dict().items())
    print(json.dumps({
        "lrs": recorded_lrs[:steps],
        "losses": raw_losses,
        "smoothed": [v.item() if not math.isnan(v.item()) else None
                     for v in recorded_losses[:steps]],
        "stop": stop,
        "iterations": finder_num_it,
        "suggestions": suggestions(recorded_lrs, recorded_losses, num_it),
        "state_changed": state_changed,
        "restored_equal": restored_equal,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
