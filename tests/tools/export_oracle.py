"""Oracle: what PyTorch, ONNX and OpenCV make of the files `ifstudio-cli export` writes.

Usage:
  export_oracle.py check ARCH NUM_CLASSES CKPT.pth EXPORT_DIR SPEC.json [SMALLCNN.py] [--corrupt]
      Builds torchvision's model (or SmallCNN from SMALLCNN.py) with CKPT.pth's weights
      (strict), runs SPEC.json's {"transform": source, "images": [paths]} through it, and prints
      JSON about EXPORT_DIR:
        "ts_diff":       max |torch.jit.load(model.pt)(x) − torchvision(x)| on the images (a batch);
        "ts_diff_other": the same on a batch of 2 random inputs of another size (dynamic shapes);
        "scale":         max(1, max |logits|), what tolerances are relative to;
        "keys_match":    the archive's state_dict() keys are torchvision's;
        "classes":       the archive's `classes` attribute; "extra": the extra files it carries
                         (labels.json, preprocessing.json), parsed;
        "checker":       onnx.checker.check_model(full_check=True) of model.onnx: null or the error;
        "metadata":      model.onnx's metadata_props;
        "onnx_diff":     max |cv2.dnn(model.onnx)(x) − torchvision(x)| (null without cv2), one
                         image at a time (OpenCV 4.6 runs squeeze-excitation only at batch 1);
        "outputs":       the graph's output names ("logits", or "probabilities" with --softmax);
        "dynamic_size":  whether the input's height and width are symbolic, and then
        "onnx_rel_diff_other": the cv2 difference on 2 random inputs of another size, relative to
                         max(1, max |output|).
      --corrupt adds 0.5 to one weight of torchvision's model first: every diff must then be
      large (the comparison can fail).
  export_oracle.py preprocess EXPORT_DIR IMAGE OURS.f32 [IMAGE OURS.f32 ...]
      Applies EXPORT_DIR/preprocessing.json with the preprocess() of EXPORT_DIR/predict.py (PIL
      only) to each image and compares with OURS.f32 (our val pipeline's float32 C×H×W tensor).
      Prints JSON {"max_diff": ..., "shapes": [[C, H, W], ...]}.
  export_oracle.py predict EXPORT_DIR IMAGE...
      Runs EXPORT_DIR/predict.py on the images in a fresh interpreter; prints its output.
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torchvision
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from training_oracle import build  # noqa: E402


def max_abs(a, b):
    return float((torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64)).abs().max())


def check_torchscript(model, x, export_dir, out):
    path = os.path.join(export_dir, "model.pt")
    if not os.path.exists(path):
        return
    extra = {"labels.json": "", "preprocessing.json": ""}
    loaded = torch.jit.load(path, map_location="cpu", _extra_files=extra)
    loaded.eval()
    with torch.no_grad():
        out["ts_diff"] = max_abs(loaded(x), model(x))
        other = torch.randn(2, 3, x.shape[2] + 16, x.shape[3] + 8, generator=torch.Generator().manual_seed(5))
        out["ts_diff_other"] = max_abs(loaded(other), model(other))
    out["keys_match"] = list(loaded.state_dict().keys()) == list(model.state_dict().keys())
    out["classes"] = list(loaded.classes)
    out["extra"] = {k: json.loads(v) for k, v in extra.items()}


def check_onnx(model, x, export_dir, out, arch):
    path = os.path.join(export_dir, "model.onnx")
    if not os.path.exists(path):
        return
    try:
        import onnx
    except ImportError:
        out["checker"] = "skipped: no onnx module"
    else:
        proto = onnx.load(path)
        try:
            onnx.checker.check_model(proto, full_check=True)
            out["checker"] = None
        except Exception as e:  # the checker's message is the finding
            out["checker"] = str(e)
        out["metadata"] = {p.key: p.value for p in proto.metadata_props}
        out["outputs"] = [o.name for o in proto.graph.output]
        out["dynamic_size"] = bool(proto.graph.input[0].type.tensor_type.shape.dim[2].dim_param)
    try:
        import cv2
    except ImportError:
        out["onnx_diff"] = None
        return
    net = cv2.dnn.readNetFromONNX(path)
    with torch.no_grad():
        ref = model(x)
        if out.get("outputs") == ["probabilities"]:
            ref = ref.softmax(1)
    def run(inputs):
        got = []
        for i in range(inputs.shape[0]):
            net.setInput(np.ascontiguousarray(inputs[i:i + 1].numpy()), "input")
            got.append(torch.from_numpy(net.forward().copy()))
        return torch.cat(got)

    out["onnx_diff"] = max_abs(run(x), ref)
    if out.get("dynamic_size"):
        # Another image size (the height and width are symbolic): relative to its largest output.
        other = torch.randn(2, 3, x.shape[2] + 16, x.shape[3] + 8, generator=torch.Generator().manual_seed(6))
        with torch.no_grad():
            ref_other = model(other)
            if out.get("outputs") == ["probabilities"]:
                ref_other = ref_other.softmax(1)
        out["onnx_rel_diff_other"] = max_abs(run(other), ref_other) / max(1.0, float(ref_other.abs().max()))


def cmd_check(arch, num_classes, ckpt, export_dir, spec_path, *rest):
    corrupt = "--corrupt" in rest
    rest = [r for r in rest if r != "--corrupt"]
    source = open(rest[0]).read() if rest else None
    model = build(arch, int(num_classes), source)
    model.load_state_dict(torch.load(ckpt, map_location="cpu"), strict=True)
    model.eval()
    if corrupt:
        with torch.no_grad():
            head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
            head.bias[0] += 0.5
    spec = json.load(open(spec_path))
    transform = eval(spec["transform"], {"transforms": transforms})  # our own test's source
    x = torch.stack([transform(torchvision.datasets.folder.default_loader(p)) for p in spec["images"]])
    out = {}
    with torch.no_grad():
        out["scale"] = max(1.0, float(model(x).abs().max()))
    check_torchscript(model, x, export_dir, out)
    check_onnx(model, x, export_dir, out, arch)
    print(json.dumps(out))


def load_predict_module(export_dir):
    spec = importlib.util.spec_from_file_location("exported_predict", os.path.join(export_dir, "predict.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cmd_preprocess(export_dir, *pairs):
    predict = load_predict_module(export_dir)
    spec = json.load(open(os.path.join(export_dir, "preprocessing.json")))
    worst, shapes = 0.0, []
    for image, ours_path in zip(pairs[0::2], pairs[1::2]):
        theirs = predict.preprocess(image, spec)
        ours = np.fromfile(ours_path, dtype=np.float32)
        shapes.append(list(theirs.shape))
        if ours.size != theirs.size:
            worst = float("inf")
            continue
        worst = max(worst, float(np.abs(ours.reshape(theirs.shape) - theirs).max()))
    print(json.dumps({"max_diff": worst, "shapes": shapes}))


def cmd_predict(export_dir, *images):
    run = subprocess.run([sys.executable, os.path.join(export_dir, "predict.py"), *images],
                         capture_output=True, text=True, timeout=300)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    sys.exit(run.returncode)


if __name__ == "__main__":
    torch.set_num_threads(1)
    commands = {"check": cmd_check, "preprocess": cmd_preprocess, "predict": cmd_predict}
    commands[sys.argv[1]](*sys.argv[2:])
