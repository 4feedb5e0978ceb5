"""Oracle: Grad-CAM as the paper and pytorch-grad-cam compute it, with hooks on torchvision's model.

Usage:
  gradcam_oracle.py weights ARCH NUM_CLASSES OUT.pth SPEC.json
      torchvision's ARCH (seed 0) with every tensor a fresh model holds constant given random
      values and the head scaled so that the logits spread (perturb()), saved as
      torch.save(model.state_dict(), OUT.pth). SPEC.json: {"transform": source, "images": [...]}.
  gradcam_oracle.py check ARCH NUM_CLASSES WEIGHTS.pth OURS.json
      OURS.json: {"cases": [{"path", "class", "input": raw float32 C×H×W file, "shape": [C, H, W],
      "heatmap": [H×W values], "probability"}], "transform": source}. Loads WEIGHTS.pth into
      torchvision's ARCH (strict=True), eval mode, float32; for each case registers a forward hook
      on the target layer (resnet*: layer4; mobilenet_v2 / others with `features`: features[-1])
      that keeps its output and a hook on that output for its gradient, runs our input tensor,
      backpropagates the case's logit and computes
          w_k = mean over (i, j) of dy/dA_k(i, j);  cam = ReLU(sum_k w_k A_k)
          cam = F.interpolate(cam, (H, W), mode="bilinear", align_corners=False); cam /= cam.max()
      Prints JSON: per case the max |ours − theirs| of the heatmap, of the probability, the
      difference between our input tensor and torchvision's transform of the image, and the
      heatmap's spread (max − min, so that a flat map cannot pass unnoticed).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from training_oracle import build, load_weights_only  # noqa: E402


def target_layer(model, arch):
    if arch.startswith("resnet"):
        return model.layer4
    return model.features[-1]


def grad_cam(model, layer, x, class_index):
    store = {}

    def forward_hook(_module, _inputs, output):
        store["activation"] = output
        output.register_hook(lambda grad: store.__setitem__("gradient", grad))

    handle = layer.register_forward_hook(forward_hook)
    try:
        model.zero_grad()
        logits = model(x)
        probability = torch.softmax(logits.detach(), 1)[0]
        if class_index < 0:
            class_index = int(probability.argmax())
        logits[0, class_index].backward()
    finally:
        handle.remove()
    activation = store["activation"].detach()
    weights = store["gradient"].mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[0, 0]
    maximum = cam.max()
    cam = cam / maximum if maximum > 0 else torch.zeros_like(cam)
    return cam, class_index, float(probability[class_index])


def perturb(model, inputs, seed=1):
    """Random values for the tensors a fresh model holds constant (biases, norms' affine
    parameters), BatchNorm's running statistics measured on `inputs`, so that the activations
    vary over the image as a trained model's do (with fresh statistics, or training_oracle's
    perturbation, MobileNet's last maps are flat), then the head scaled so that the logits of
    `inputs` have a standard deviation of 2."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if not t.is_floating_point() or (t.numel() > 1 and t.std() > 0) or "running" in key:
                continue
            if bool((t == 1).all()):  # norm weights
                t.mul_(torch.empty(t.shape).uniform_(0.7, 1.3, generator=generator))
            else:  # biases
                t.add_(0.1 * torch.randn(t.shape, generator=generator))
        # BatchNorm's running statistics measured on the images (a cumulative average), as after
        # training: with a fresh model's 0 and 1, MobileNet's activations die out with depth.
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        model.train()
        model(torch.cat(inputs))
        model.eval()
        logits = torch.cat([model(x) for x in inputs])
        head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        scale = 2.0 / logits.std().item()
        head.weight.mul_(scale)
        head.bias.mul_(scale)


def cmd_weights(arch, num_classes, out_path, spec_path):
    model = build(arch, int(num_classes))
    spec = json.load(open(spec_path))
    transform = eval(spec["transform"], {"transforms": transforms})  # our own test's source
    inputs = [transform(torchvision.datasets.folder.default_loader(p)).unsqueeze(0)
              for p in spec["images"]]
    perturb(model, inputs)
    torch.save(model.state_dict(), out_path)
    print(json.dumps({"saved": out_path}))


def cmd_check(arch, num_classes, weights, ours_path):
    model = build(arch, int(num_classes))
    state, _how = load_weights_only(weights)
    model.load_state_dict(state, strict=True)
    model.eval()
    layer = target_layer(model, arch)
    ours = json.load(open(ours_path))
    transform = eval(ours["transform"], {"transforms": transforms})  # our own test's source
    out = {"cases": []}
    for case in ours["cases"]:
        shape = case["shape"]
        data = np.fromfile(case["input"], dtype=np.float32).reshape(shape)
        x = torch.from_numpy(data.copy()).unsqueeze(0)
        theirs_input = transform(torchvision.datasets.folder.default_loader(case["path"]))
        cam, class_index, probability = grad_cam(model, layer, x, case["class"])
        mine = torch.tensor(case["heatmap"], dtype=torch.float32).reshape(cam.shape)
        out["cases"].append({
            "path": case["path"],
            "class": class_index,
            "input_diff": (theirs_input - x[0]).abs().max().item(),
            "heatmap_diff": (mine - cam).abs().max().item(),
            "probability_diff": abs(probability - case["probability"]),
            "spread": (cam.max() - cam.min()).item(),
            "shape": list(cam.shape),
        })
    print(json.dumps(out))


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {"weights": cmd_weights, "check": cmd_check}[command](*arguments)
