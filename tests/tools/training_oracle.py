"""Oracle: what PyTorch and torchvision make of the models and run folders of the trainer.

Usage:
  training_oracle.py arch ARCH NUM_CLASSES WEIGHTS.pth OURS.json [SMALLCNN.py]
      WEIGHTS.pth is our freshly initialised model (exportInitialWeights); OURS.json holds our
      softmax outputs for some images with it: {"transform": source, "predictions": {path:
      [probabilities]}}. Builds torchvision's model (or SmallCNN from SMALLCNN.py, our Python
      source) and prints JSON:
        "strict":   load_state_dict(strict=True) of our weights: null or the error;
        "order":    whether our keys come in state_dict() order;
        "shapes":   keys whose shapes differ (none when strict loads);
        "init":     per tensor, our mean/std and torchvision's (fresh init, seed 0);
        "forward_max_prob_diff": max |ours − torchvision| of the eval-mode probabilities of
                    OURS.json's images with our weights (the forward passes compute the same).
  training_oracle.py theirs ARCH NUM_CLASSES OUT.pth SPEC.json [SMALLCNN.py]
      The other way: builds torchvision's model (seed 0), gives every tensor that a fresh model
      holds constant (biases, norms' affine parameters, running statistics, ConvNeXt's layer
      scales) random values and scales the head so that the logits spread (see perturb()),
      writes torch.save(model.state_dict(), OUT.pth) and prints JSON {"probabilities": {path:
      [eval-mode softmax]}, "spread": the largest max − min probability of an image} for
      SPEC.json's {"transform": source, "images": [paths]}: what our model must give with
      torchvision's weights.
  training_oracle.py interop RUN_DIR VAL_ROOT OURS.json
      Loads RUN_DIR/last.pth as weights-only loading does (see load_weights_only()), the model
      into torchvision's resnet18(num_classes=N) with strict=True, the optimizer state into
      torch.optim.SGD, builds the val transform from the checkpoint's 'transforms' source, runs
      ImageFolder(VAL_ROOT) and compares with OURS.json ({"path": [probabilities]}). Prints JSON.
  training_oracle.py optimizer RUN_DIR INITIAL.pth TRAIN_ROOT THREADS [HEAD_PREFIX]
      Checks a full-batch resnet18 run of ours (one step per epoch, epoch_NNN.pth kept) against
      torch.optim and torch.optim.lr_scheduler, one step at a time: from our weights and
      optimizer state after step k (INITIAL.pth and a fresh optimizer for k = 0), Python takes
      step k + 1 with the hyperparameters of RUN_DIR/config.json on ImageFolder(TRAIN_ROOT) and
      the schedule's rate and momentum (beta1) for that step, with THREADS compute threads (the
      run's). (Whole trajectories cannot be compared: float rounding alone, e.g. another sample
      order, moves resnet18's weights by about 1% after four full-batch steps.) Prints JSON
      {"steps": [...]}, per step the rate, momentum and loss of both, |Δours − Δtorch| / |Δtorch|
      over the parameters, and the share of parameters whose change is more than 1% (+ 1e-6) off
      torch's beyond what rounding alone moves that tensor's changes: the largest difference
      between torch's step and the same step on the samples in reverse order (a witness, also
      reported as rounding_rel_diff and rounding_share).

      Fine-tuning (config.json's finetune, unfreeze_epoch, backbone_lr_factor; the head is the
      parameters under HEAD_PREFIX, default "fc."): torch.optim gets the head's group first and
      the backbone's at lr x factor second, SGD([{'params': head}, {'params': backbone, 'lr':
      lr * factor}]); a frozen backbone has requires_grad False and its BatchNorm layers in eval
      mode, and joins by add_param_group() in the step after unfreeze_epoch. Each step reports
      both sides' group rates (group_lrs, our_group_lrs).

      bf16 (config.json's amp "bf16"): the step runs as the tuned Python loop does, the model and
      images in channels_last and the forward pass under torch.autocast("cpu", torch.bfloat16),
      the loss in float32 on its output; loss_fp32 is the same step's loss without autocast (the
      witness that autocast changes something), and the rounding witness takes the samples in
      a shuffled order (reversing them moves a bf16 loss less than our loader's shuffle does).
      Imbalanced data (config.json's class_weights and sampler): the loss is
      F.cross_entropy(..., weight=torch.tensor(class_weights), label_smoothing=...), and with
      the weighted sampler each step (one per epoch) takes the images in the order that
      WeightedRandomSampler draws for that epoch (imbalance_oracle.py: 1 / n_class per image,
      replacement, the generator seeded with the epoch's order seed); the witness reverses it.
  training_oracle.py autocast ARCH NUM_CLASSES WEIGHTS.pth OURS.json [SMALLCNN.py]
      OURS.json as for `arch`, our probabilities with bf16 autocast. Prints JSON
      {"bf16_max_prob_diff": max |ours - Python's eval-mode model in channels_last under
      torch.autocast("cpu", torch.bfloat16)|, "fp32_max_prob_diff": the same against float32}.

      Why the thread count matters: the kernels split their sums by thread, and the second step
      of the SGD run (after a rate-0.05 step, BatchNorm's backward cancels heavily) amplifies
      that rounding. Measured on this machine from the same state of ours: torch.optim with 2
      threads against torch.optim with 1 thread differs by 1.25e-3 and a share of 3.4e-4, while
      ours (2 threads) against torch.optim with 2 threads differs by 1.6e-5 and a share of 0, as
      much as reversing the samples does (1.4e-5, 0). Rounding alone otherwise gives about 4e-5
      and 0 for SGD, 3e-4 and 3e-6 for Adam, whose first step divides each gradient by its own
      magnitude.
"""
import collections
import copy
import io
import json
import os
import pickle
import pickletools
import sys
import warnings
import zipfile

import torch
import torchvision
from torchvision import transforms  # noqa: F401  (the stored sources use `transforms.`)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpointwriter_oracle import ALLOWED_GLOBALS, WEIGHTS_ONLY_OPCODES  # noqa: E402
from imbalance_oracle import sample_weights, weighted_order  # noqa: E402


def pickle_audit(path):
    """The globals and opcodes of the file's data.pkl against the weights-only allow-list."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        data = archive.read(name)
    globals_seen, opcodes = set(), set()
    for opcode, argument, _ in pickletools.genops(data):
        opcodes.add(opcode.name)
        if opcode.name == "GLOBAL":
            globals_seen.add(argument.replace(" ", "."))
    return sorted(globals_seen - ALLOWED_GLOBALS), sorted(opcodes - WEIGHTS_ONLY_OPCODES)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if f"{module}.{name}" not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed with weights_only")
        return super().find_class(module, name)


class _RestrictedPickleModule:
    Unpickler = _RestrictedUnpickler
    load = staticmethod(pickle.load)


def load_weights_only(path):
    """torch.load(path, weights_only=True). torch 1.13's weights-only unpickler lacks BINFLOAT (it
    refuses any Python float, which every optimizer state holds; PyTorch >= 2.0 reads them): there,
    the file's pickle is audited against the weights-only allow-list (globals and opcodes) and
    loaded with an unpickler that refuses every other global. Returns (object, how)."""
    try:
        return torch.load(path, weights_only=True, map_location="cpu"), "weights_only=True"
    except Exception as error:  # noqa: BLE001
        if "Unsupported operand 71" not in str(error):
            raise
    disallowed, unsupported = pickle_audit(path)
    if disallowed or unsupported:
        raise RuntimeError(f"not weights-only loadable: globals {disallowed}, opcodes {unsupported}")
    return (torch.load(path, map_location="cpu", pickle_module=_RestrictedPickleModule),
            "allow-list audit + restricted unpickler (torch 1.13 lacks BINFLOAT)")


def build(arch, num_classes, smallcnn_source=None):
    torch.manual_seed(0)
    if arch == "small_cnn":
        namespace = {}
        exec(compile(smallcnn_source, "SmallCNN", "exec"), namespace)  # our own exported source
        return namespace["SmallCNN"](num_classes=num_classes)
    return getattr(torchvision.models, arch)(num_classes=num_classes)


def cmd_arch(arch, num_classes, weights, ours_path, source_path=None):
    source = open(source_path).read() if source_path else None
    model = build(arch, int(num_classes), source)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    ours, how = load_weights_only(weights)
    out = {"how": how, "order": list(ours.keys()) == list(reference.keys())}
    out["shapes"] = [k for k in ours if k in reference and ours[k].shape != reference[k].shape]
    try:
        model.load_state_dict(ours, strict=True)
        out["strict"] = None
    except Exception as error:  # noqa: BLE001
        out["strict"] = str(error)
    out["init"] = {}
    for key, theirs in reference.items():
        if key not in ours or not theirs.is_floating_point():
            continue
        mine = ours[key].double()
        out["init"][key] = {"numel": theirs.numel(),
                            "ours": [mine.mean().item(), mine.std().item() if mine.numel() > 1 else 0.0],
                            "theirs": [theirs.double().mean().item(),
                                       theirs.double().std().item() if theirs.numel() > 1 else 0.0]}
    if out["strict"] is None:
        # Our forward pass on real images against torchvision's with the same weights.
        spec = json.load(open(ours_path))
        transform = eval(spec["transform"], {"transforms": transforms})  # our own test's source
        model.eval()
        diff = 0.0
        with torch.no_grad():
            for path, probabilities in spec["predictions"].items():
                image = torchvision.datasets.folder.default_loader(path)
                theirs = torch.softmax(model(transform(image).unsqueeze(0)), 1)[0]
                diff = max(diff, (torch.tensor(probabilities) - theirs).abs().max().item())
        out["forward_max_prob_diff"] = diff
    print(json.dumps(out))


def perturb(model, inputs, seed=1):
    """Random values for every tensor a fresh model holds constant, then the head (the last
    nn.Linear) scaled so that the logits of `inputs` have a standard deviation of 2: with fresh
    weights alone, a forward pass hides a miswired bias or norm (zero biases, BatchNorm at 1/0,
    ConvNeXt's blocks at 1e-6 × their branch), BatchNorm's eps, and the probabilities are nearly
    uniform (heads drawn from N(0, 0.01))."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in model.state_dict().items():  # tensors that share the parameters' storage
            if not t.is_floating_point() or (t.numel() > 1 and t.std() > 0):
                continue
            if key.endswith("layer_scale"):
                t.copy_(torch.empty(t.shape).uniform_(0.3, 1.0, generator=generator))
            elif bool((t == 1).all()):  # norm weights, running variances
                t.mul_(torch.empty(t.shape).uniform_(0.7, 1.3, generator=generator))
            else:  # biases, running means
                t.add_(0.1 * torch.randn(t.shape, generator=generator))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                # Variances of about 1e-3 (the weights scaled to keep each layer's gain): the
                # outputs then depend on eps, 1e-3 (MobileNetV3) against 1e-5 changing each
                # layer's scale by a third.
                m.running_var.mul_(1e-3)
                m.weight.mul_(1e-3 ** 0.5)
        model.eval()
        logits = torch.cat([model(x) for x in inputs])
        head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        scale = 2.0 / logits.std().item()
        head.weight.mul_(scale)
        head.bias.mul_(scale)


def cmd_theirs(arch, num_classes, out_path, spec_path, source_path=None):
    source = open(source_path).read() if source_path else None
    model = build(arch, int(num_classes), source)
    spec = json.load(open(spec_path))
    transform = eval(spec["transform"], {"transforms": transforms})  # our own test's source
    images = spec["images"]
    inputs = [transform(torchvision.datasets.folder.default_loader(p)).unsqueeze(0) for p in images]
    perturb(model, inputs)
    torch.save(model.state_dict(), out_path)
    out = {"probabilities": {}, "spread": 0.0}
    with torch.no_grad():
        for path, x in zip(images, inputs):
            p = torch.softmax(model(x), 1)[0]
            out["probabilities"][path] = p.tolist()
            out["spread"] = max(out["spread"], (p.max() - p.min()).item())
    print(json.dumps(out))


def cmd_autocast(arch, num_classes, weights, ours_path, source_path=None):
    source = open(source_path).read() if source_path else None
    model = build(arch, int(num_classes), source)
    model.load_state_dict(load_weights_only(weights)[0], strict=True)
    model.eval()
    spec = json.load(open(ours_path))
    transform = eval(spec["transform"], {"transforms": transforms})  # our own test's source
    paths = list(spec["predictions"])
    batch = torch.stack([transform(torchvision.datasets.folder.default_loader(p)) for p in paths])
    ours = torch.tensor([spec["predictions"][p] for p in paths])
    with torch.no_grad():
        fp32 = torch.softmax(model(batch), 1)
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = torch.softmax(model(batch.contiguous(memory_format=torch.channels_last)).float(), 1)
    print(json.dumps({"bf16_max_prob_diff": (ours - bf16).abs().max().item(),
                      "fp32_max_prob_diff": (ours - fp32).abs().max().item(),
                      "bf16_vs_fp32": (bf16 - fp32).abs().max().item()}))


def cmd_interop(run_dir, val_root, ours_path):
    ck, how = load_weights_only(os.path.join(run_dir, "last.pth"))
    out = {"how": how, "keys": sorted(ck.keys()), "arch": ck["arch"], "epoch": ck["epoch"]}
    model = torchvision.models.resnet18(num_classes=ck["num_classes"])
    model.load_state_dict(ck["model_state_dict"], strict=True)
    out["strict"] = True
    group = ck["optimizer_state_dict"]["param_groups"][0]
    optimizer = torch.optim.SGD(model.parameters(), lr=group["lr"], momentum=group["momentum"],
                                weight_decay=group["weight_decay"])
    optimizer.load_state_dict(ck["optimizer_state_dict"])
    state = optimizer.state_dict()["state"]
    names = [name for name, _ in model.named_parameters()]
    out["optimizer_params"] = len(names)
    out["optimizer_states"] = len(state)
    out["momentum_shapes_ok"] = all(
        state[i]["momentum_buffer"].shape == p.shape for i, p in enumerate(model.parameters()))
    # One optimizer step works with the loaded state.
    model.train()
    x = torch.rand(4, 3, 28, 28)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    optimizer.step()
    model.load_state_dict(ck["model_state_dict"], strict=True)

    val_transform = eval(ck["transforms"]["val"], {"transforms": transforms})  # our own source
    dataset = torchvision.datasets.ImageFolder(val_root, transform=val_transform)
    out["class_to_idx_same"] = dataset.class_to_idx == ck["class_to_idx"]
    ours = json.load(open(ours_path))
    model.eval()
    agree, max_diff, compared = 0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(dataset), 64):
            items = [dataset[i] for i in range(start, min(start + 64, len(dataset)))]
            batch = torch.stack([image for image, _ in items])
            probabilities = torch.softmax(model(batch), 1)
            for offset, row in enumerate(probabilities):
                path = dataset.samples[start + offset][0]
                mine = torch.tensor(ours[path])
                compared += 1
                agree += int(mine.argmax().item() == row.argmax().item())
                max_diff = max(max_diff, (mine - row).abs().max().item())
    out.update({"compared": compared, "agree": agree, "max_prob_diff": max_diff})
    print(json.dumps(out))


def make_scheduler(optimizer, config, total_steps):
    """torch.optim.lr_scheduler's equivalent of the run's schedule, stepped once per step."""
    lr_scheduler = torch.optim.lr_scheduler
    name = config["schedule"]
    warmup = round(config["warmup_epochs"])  # one step per epoch here
    if name == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                       total_steps=total_steps)
    if name == "step":
        main = lr_scheduler.StepLR(optimizer, step_size=config["step_epochs"], gamma=config["step_gamma"])
    elif name == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps - warmup)
    else:
        main = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup == 0:
        return main
    return lr_scheduler.SequentialLR(
        optimizer, [lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup), main],
        milestones=[warmup])


def finetune_groups(model, config, head_prefix, epoch):
    """The parameter groups of `epoch` (1-based) as torch.optim gets them, the backbone's
    parameters when it is frozen in that epoch (else []), and its factor."""
    mode = config.get("finetune", "full")
    factor = config.get("backbone_lr_factor", 1.0)
    named = list(model.named_parameters())
    if mode == "full" and factor == 1.0:
        return [{"params": [p for _, p in named]}], [], factor
    head = [p for n, p in named if n.startswith(head_prefix)]
    backbone = [p for n, p in named if not n.startswith(head_prefix)]
    frozen = mode == "head" or (mode == "head-then-full" and epoch <= config["unfreeze_epoch"])
    if frozen:
        return [{"params": head}], backbone, factor
    return [{"params": head}, {"params": backbone, "lr": config["lr"] * factor}], [], factor


def frozen_backbone_eval(model, head_prefix):
    """A frozen backbone computes fixed features: its BatchNorm layers use their running
    statistics and its stochastic depth is off (dropout layers stay: they regularise the head)."""
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.modules.batchnorm._BatchNorm,
                               torchvision.ops.StochasticDepth)) and \
                not (name + ".").startswith(head_prefix):
            module.eval()


def cmd_optimizer(run_dir, initial_path, train_root, threads, head_prefix="fc."):
    # The run's own thread count: it decides how the kernels split their sums, and so how the
    # float32 gradient rounds (see the docstring).
    torch.set_num_threads(int(threads))
    config = json.load(open(os.path.join(run_dir, "config.json")))
    transform = eval(config["train_transforms"], {"transforms": transforms})  # our test's source
    dataset = torchvision.datasets.ImageFolder(train_root, transform=transform)
    if config["batch_size"] != len(dataset) or config["save_every"] != 1:
        raise SystemExit("the run must train on the whole set in one batch and keep every epoch")
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor(dataset.targets)
    # Imbalanced data: the loss's class weights, and the weighted sampler's per-image weights.
    class_weights = config.get("class_weights") or []
    weight = torch.tensor(class_weights) if class_weights else None
    per_image = sample_weights(dataset.targets) if config.get("sampler") == "weighted" else None
    # The run's memory format ("auto" is channels_last on the CPU too): the convolutions'
    # kernels, and so how their sums round, follow it.
    channels_last = config.get("memory_format", "auto") != "contiguous"
    layout = torch.channels_last if channels_last else torch.contiguous_format
    name = config["optimizer"]
    steps = config["epochs"]  # one step per epoch

    def momentum_of(group):
        return group["momentum"] if name == "sgd" else group["betas"][0]

    def make_optimizer(params):
        """`params`: a list of tensors or of param group dicts."""
        if name == "sgd":
            return torch.optim.SGD(params, lr=config["lr"], momentum=config["momentum"],
                                   nesterov=config["nesterov"], weight_decay=config["weight_decay"])
        kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return kind(params, lr=config["lr"], betas=tuple(config["betas"]), eps=config["eps"],
                    weight_decay=config["weight_decay"])

    def epoch_file(k):
        return load_weights_only(os.path.join(run_dir, "epoch_%03d.pth" % k))[0]

    def take_step(before, k, order):
        """Python's step k + 1 from our state after step k (our weights, our optimizer state), on
        the samples in `order`. Returns the model after it, the loss, the rate and momentum."""
        model = torchvision.models.resnet18(num_classes=len(dataset.classes))
        model.load_state_dict(before["model_state_dict"], strict=True)
        model = model.to(memory_format=layout)
        params = list(model.parameters())
        # The groups as the state after step k has them (the phase of epoch k), then those of
        # step k + 1's epoch: an unfreeze in between adds the backbone's group.
        groups, frozen, factor = finetune_groups(model, config, head_prefix, max(k, 1))
        optimizer = make_optimizer(groups)
        if before["optimizer_state_dict"] is not None:
            optimizer.load_state_dict(before["optimizer_state_dict"])
        _, frozen_now, _ = finetune_groups(model, config, head_prefix, k + 1)
        if frozen and not frozen_now:
            optimizer.add_param_group({"params": frozen, "lr": config["lr"] * factor})
        for p in frozen_now:
            p.requires_grad_(False)
        for index, group in enumerate(optimizer.param_groups):
            # The schedule below sets these from the start.
            group["lr"] = config["lr"] * (factor if index == 1 else 1.0)
            if name == "sgd":
                group["momentum"] = config["momentum"]
            else:
                group["betas"] = tuple(config["betas"])
        scheduler = make_scheduler(optimizer, config, steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
            for _ in range(k):
                scheduler.step()
        group = optimizer.param_groups[0]
        lr, momentum = group["lr"], momentum_of(group)
        group_lrs = [g["lr"] for g in optimizer.param_groups]
        model.train()
        if frozen_now:
            frozen_backbone_eval(model, head_prefix)
        optimizer.zero_grad()
        inputs = images[order].contiguous(memory_format=layout)
        smoothing = config["label_smoothing"]
        loss_fp32 = None
        if bf16:
            model = model.to(memory_format=torch.channels_last)
            inputs = inputs.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():  # the same step in float32 (BatchNorm's statistics restored)
                saved = copy.deepcopy(model.state_dict())
                loss_fp32 = torch.nn.functional.cross_entropy(
                    model(inputs), labels[order], weight=weight, label_smoothing=smoothing).item()
                model.load_state_dict(saved)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                output = model(inputs)
        else:
            output = model(inputs)
        loss = torch.nn.functional.cross_entropy(output.float(), labels[order], weight=weight,
                                                 label_smoothing=smoothing)
        loss.backward()
        if config["grad_clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, config["grad_clip_norm"])
        optimizer.step()
        return dict(model.named_parameters()), loss.item(), lr, momentum, group_lrs, loss_fp32

    our_steps = []
    with open(os.path.join(run_dir, "steps.csv")) as f:
        next(f)
        for line in f:
            _, _, loss, lr = line.strip().split(",")
            our_steps.append((float(loss), float(lr)))

    bf16 = config.get("amp") == "bf16"
    initial = load_weights_only(initial_path)[0]
    rows = []
    before = {"model_state_dict": initial, "optimizer_state_dict": None}
    in_order = torch.arange(len(dataset))
    for k in range(steps):
        order = in_order
        if per_image is not None:  # epoch k + 1 is the loader's epoch k
            order = torch.tensor(weighted_order(per_image, config["seed"], k))
        theirs_after, loss, lr, momentum, group_lrs, loss_fp32 = take_step(before, k, order)
        # The rounding witness: the same step on the samples in reverse order, a sum of the same
        # terms in another order (ours are in our loader's shuffled order). In bf16, a shuffled
        # order like ours: BatchNorm's statistics then round otherwise in many more places.
        other = order.flip(0)
        if bf16:
            other = order[torch.randperm(len(dataset), generator=torch.Generator().manual_seed(k))]
        witness_after, witness_loss = take_step(before, k, other)[:2]
        after = epoch_file(k + 1)
        diff_sq, delta_sq, witness_sq, mismatched, witness_mismatched, total = 0, 0, 0, 0, 0, 0
        for key, param in theirs_after.items():
            start = before["model_state_dict"][key].double()
            theirs = param.detach().double() - start
            ours = after["model_state_dict"][key].double() - start
            witness = witness_after[key].detach().double() - start
            tolerance = 0.01 * theirs.abs() + 1e-6
            # How far rounding alone moves this tensor's changes: a bound for each of them.
            rounding = (witness - theirs).abs().max()
            diff_sq += (ours - theirs).pow(2).sum().item()
            delta_sq += theirs.pow(2).sum().item()
            witness_sq += (witness - theirs).pow(2).sum().item()
            mismatched += ((ours - theirs).abs() > tolerance + rounding).sum().item()
            witness_mismatched += ((witness - theirs).abs() > tolerance).sum().item()
            total += theirs.numel()
        rows.append({
            "step": k + 1,
            "lr": lr, "our_lr": our_steps[k][1],
            "momentum": momentum,
            "our_momentum": momentum_of(after["optimizer_state_dict"]["param_groups"][0]),
            "loss": loss, "our_loss": our_steps[k][0], "loss_fp32": loss_fp32,
            "witness_loss": witness_loss,
            "group_lrs": group_lrs,
            "our_group_lrs": [g["lr"] for g in after["optimizer_state_dict"]["param_groups"]],
            "delta_norm": delta_sq ** 0.5,
            "delta_rel_diff": (diff_sq / delta_sq) ** 0.5 if delta_sq > 0 else float("inf"),
            "mismatch_share": mismatched / total,
            "rounding_rel_diff": (witness_sq / delta_sq) ** 0.5 if delta_sq > 0 else float("inf"),
            "rounding_share": witness_mismatched / total,
        })
        before = after
    print(json.dumps({"steps": rows}))


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {"arch": cmd_arch, "theirs": cmd_theirs, "autocast": cmd_autocast, "interop": cmd_interop,
     "optimizer": cmd_optimizer}[command](*arguments)
