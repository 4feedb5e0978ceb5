#!/usr/bin/env python3
"""Oracle for TensorBoard event files (tests/tst_tensorboard.cpp).

The message classes are built at run time from a descriptor defined here with the field numbers of
tensorboard/compat/proto/{event,summary,tensor,tensor_shape}.proto (the `tensorboard` package is
not installed next to torch 1.13 here, so torch.utils.tensorboard cannot be imported); the
records' CRCs are checked with the crc32c package.

  verify RUNDIR         decode RUNDIR's events.out.tfevents.* files, check every CRC, compare the
                        values with metrics.csv, steps.csv and config.json; prints a JSON summary
                        and exits 1 on any difference
  write FILE            write an event file as a Python training script's SummaryWriter would
                        (Loss/train, Accuracy/val as fractions, a per-batch loss, the learning
                        rate, a text, a new-style tensor scalar), each record framed and CRC'd
                        here; prints what it wrote as JSON
"""
import csv
import glob
import json
import os
import struct
import sys
import time

import crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def _message(file, name, fields, nested=()):
    msg = file.message_type.add() if isinstance(file, descriptor_pb2.FileDescriptorProto) \
        else file.nested_type.add()
    msg.name = name
    for nested_name, nested_fields in nested:
        _message(msg, nested_name, nested_fields)
    for fname, number, ftype, label, type_name in fields:
        f = msg.field.add()
        f.name, f.number, f.type, f.label = fname, number, ftype, label
        if type_name:
            f.type_name = type_name
    return msg


def build_classes():
    """Event, Summary, SummaryMetadata, TensorProto with tensorboard's field numbers."""
    fd = descriptor_pb2.FileDescriptorProto(name="tb_oracle.proto", package="tb", syntax="proto3")
    OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    _message(fd, "TensorShapeProto", [("dim", 2, F.TYPE_MESSAGE, REP, ".tb.TensorShapeProto.Dim"),
                                      ("unknown_rank", 3, F.TYPE_BOOL, OPT, None)],
             nested=[("Dim", [("size", 1, F.TYPE_INT64, OPT, None),
                              ("name", 2, F.TYPE_STRING, OPT, None)])])
    _message(fd, "TensorProto", [
        ("dtype", 1, F.TYPE_INT32, OPT, None),  # enum DataType; DT_FLOAT 1, DT_DOUBLE 2, DT_STRING 7
        ("tensor_shape", 2, F.TYPE_MESSAGE, OPT, ".tb.TensorShapeProto"),
        ("version_number", 3, F.TYPE_INT32, OPT, None),
        ("tensor_content", 4, F.TYPE_BYTES, OPT, None),
        ("float_val", 5, F.TYPE_FLOAT, REP, None),
        ("double_val", 6, F.TYPE_DOUBLE, REP, None),
        ("string_val", 8, F.TYPE_BYTES, REP, None)])
    _message(fd, "SummaryMetadata", [
        ("plugin_data", 1, F.TYPE_MESSAGE, OPT, ".tb.SummaryMetadata.PluginData"),
        ("display_name", 2, F.TYPE_STRING, OPT, None),
        ("summary_description", 3, F.TYPE_STRING, OPT, None)],
        nested=[("PluginData", [("plugin_name", 1, F.TYPE_STRING, OPT, None),
                                ("content", 2, F.TYPE_BYTES, OPT, None)])])
    _message(fd, "Summary", [("value", 1, F.TYPE_MESSAGE, REP, ".tb.Summary.Value")],
             nested=[("Value", [("node_name", 7, F.TYPE_STRING, OPT, None),
                                ("tag", 1, F.TYPE_STRING, OPT, None),
                                ("metadata", 9, F.TYPE_MESSAGE, OPT, ".tb.SummaryMetadata"),
                                ("simple_value", 2, F.TYPE_FLOAT, OPT, None),
                                ("tensor", 8, F.TYPE_MESSAGE, OPT, ".tb.TensorProto")])])
    _message(fd, "Event", [("wall_time", 1, F.TYPE_DOUBLE, OPT, None),
                           ("step", 2, F.TYPE_INT64, OPT, None),
                           ("file_version", 3, F.TYPE_STRING, OPT, None),
                           ("graph_def", 4, F.TYPE_BYTES, OPT, None),
                           ("summary", 5, F.TYPE_MESSAGE, OPT, ".tb.Summary")])
    # simple_value and tensor are a oneof in summary.proto
    value = fd.message_type[3].nested_type[0]
    value.oneof_decl.add(name="value")
    for f in value.field:
        if f.name in ("simple_value", "tensor"):
            f.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    factory = message_factory.MessageFactory(pool)

    def cls(name):
        desc = pool.FindMessageTypeByName("tb." + name)
        get = getattr(message_factory, "GetMessageClass", None)
        return get(desc) if get else factory.GetPrototype(desc)

    return {n: cls(n) for n in ("Event", "Summary", "SummaryMetadata", "TensorProto",
                                "TensorShapeProto")}


PB = build_classes()


def masked(data):
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    """The records of a TFRecord file; every CRC is checked (an AssertionError names the one)."""
    data = open(path, "rb").read()
    at, records = 0, []
    while at < len(data):
        assert len(data) - at >= 12, f"{path}: a record header cut short at byte {at}"
        (length,) = struct.unpack("<Q", data[at:at + 8])
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        assert length_crc == masked(data[at:at + 8]), f"{path}: length CRC at byte {at}"
        body = data[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        assert data_crc == masked(body), f"{path}: data CRC at byte {at}"
        records.append(body)
        at += 16 + length
    return records


def frame(body):
    header = struct.pack("<Q", len(body))
    return header + struct.pack("<I", masked(header)) + body + struct.pack("<I", masked(body))


def decode(path):
    """(file_version, [(tag, step, value or text, wall_time)]) of one event file."""
    events = []
    version = None
    for i, body in enumerate(read_records(path)):
        ev = PB["Event"]()
        ev.ParseFromString(body)
        if i == 0:
            version = ev.file_version
            continue
        for v in ev.summary.value:
            if v.WhichOneof("value") == "simple_value":
                events.append((v.tag, ev.step, v.simple_value, ev.wall_time))
            elif v.metadata.plugin_data.plugin_name == "text":
                assert v.tensor.dtype == 7 and [d.size for d in v.tensor.tensor_shape.dim] == [1]
                events.append((v.tag, ev.step, v.tensor.string_val[0].decode("utf-8"),
                               ev.wall_time))
    return version, events


def close(a, b, decimals=None):
    """Whether the event's float32 `a` is the CSV's `b`, which has `decimals` decimals (else
    nine significant digits)."""
    if decimals is not None:
        return abs(a - b) <= 0.5 * 10 ** -decimals + 1e-6 * abs(b)
    f = struct.unpack("<f", struct.pack("<f", b))[0]  # the event holds a float32
    return a == f or abs(a - f) <= 1e-6 * max(1.0, abs(f))


def verify(run):
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
    problems = []
    scalars = {}
    texts = {}
    for path in files:
        version, events = decode(path)
        if version != "brain.Event:2":
            problems.append(f"{path}: file_version {version!r}")
        for tag, step, value, _ in events:
            if isinstance(value, str):
                texts[tag] = value
            else:
                scalars.setdefault(tag, {})[step] = value
    metrics = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    steps = list(csv.DictReader(open(os.path.join(run, "steps.csv"))))
    compared = 0

    def check(tag, step, expected, decimals=None):
        nonlocal compared
        got = scalars.get(tag, {}).get(step)
        if got is None or not close(got, float(expected), decimals):
            problems.append(f"{tag} at step {step}: {got} in the events, {expected} in the CSV")
        compared += 1

    for row in steps:
        check("train/loss_step", int(row["step"]), row["loss"])
        check("train/lr", int(row["step"]), row["lr"])
    for row in metrics:
        epoch = int(row["epoch"])
        check("train/loss", epoch, row["train_loss"])
        check("train/accuracy", epoch, row["train_acc"], 4)  # metrics.csv: percent, 4 decimals
        check("val/loss", epoch, row["val_loss"])
        check("val/accuracy", epoch, row["val_acc"], 4)
        check("train/images_per_s", int(row["step"]), row["images_per_s"], 1)
    extra = {t: len(s) for t, s in scalars.items()}
    if extra.get("train/loss_step", 0) != len(steps):
        problems.append(f"{extra.get('train/loss_step')} step losses for {len(steps)} steps")
    if extra.get("train/loss", 0) != len(metrics):
        problems.append(f"{extra.get('train/loss')} epoch losses for {len(metrics)} epochs")
    config_text = texts.get("config/text_summary")
    if config_text is None:
        problems.append("no config text")
    elif json.loads(config_text) != json.load(open(os.path.join(run, "config.json"))):
        problems.append("the config text differs from config.json")
    print(json.dumps({"files": len(files), "compared": compared, "problems": problems}))
    return 1 if problems else 0


def write(path):
    """A Python run's event file: epoch values at step = epoch, per-batch ones at the batch."""
    now = time.time()
    out = [PB["Event"](wall_time=now, file_version="brain.Event:2")]
    written = {"steps": [], "epochs": []}

    def scalar(tag, value, step):
        s = PB["Summary"]()
        s.value.add(tag=tag, simple_value=value)
        out.append(PB["Event"](wall_time=now, step=step, summary=s))

    step = 0
    for epoch in range(1, 4):
        for _ in range(5):
            step += 1
            loss = 2.0 / (step + 1)
            lr = 0.1 * (0.9 ** step)
            scalar("Loss/train_batch", loss, step)
            scalar("learning_rate", lr, step)
            written["steps"].append([step, loss, lr])
        row = [epoch, 1.5 / epoch, 0.5 + 0.1 * epoch, 1.7 / epoch, 0.45 + 0.1 * epoch]
        scalar("Loss/train", row[1], epoch)
        scalar("Accuracy/train", row[2], epoch)
        scalar("Loss/val", row[3], epoch)
        # new style (scalar(new_style=True)): a DT_FLOAT tensor with the scalars plugin
        s = PB["Summary"]()
        v = s.value.add(tag="Accuracy/val")
        v.metadata.plugin_data.plugin_name = "scalars"
        v.tensor.dtype = 1
        v.tensor.float_val.append(row[4])
        out.append(PB["Event"](wall_time=now, step=epoch, summary=s))
        written["epochs"].append(row)
    s = PB["Summary"]()
    t = s.value.add(tag="notes/text_summary")
    t.metadata.plugin_data.plugin_name = "text"
    t.tensor.dtype = 7
    t.tensor.tensor_shape.dim.add(size=1)
    t.tensor.string_val.append("a Python run".encode("utf-8"))
    out.append(PB["Event"](wall_time=now, step=0, summary=s))
    with open(path, "wb") as f:
        for ev in out:
            f.write(frame(ev.SerializeToString()))
    print(json.dumps(written))
    return 0


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("verify", "write"):
        print(__doc__, file=sys.stderr)
        return 2
    return verify(sys.argv[2]) if sys.argv[1] == "verify" else write(sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
