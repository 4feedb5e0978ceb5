#pragma once

#include "base/result.h"
#include "checkpoint/checkpointvalue.h"

#include <QString>

namespace ifs::ckpt {

/// How writeCheckpoint() writes a file.
struct WriteOptions
{
    /// When set ("cuda:0", "cpu"), the location tag of every storage: `torch.load` without a
    /// map_location then puts every tensor there (a file prepared for a GPU machine). Empty:
    /// each storage keeps its own Storage::device.
    QString device;
    /// The folder that holds the records inside the zip. torch ≥ 2.0 writes "archive"; torch
    /// 1.6–1.13 wrote the file's name without its extension: empty means that.
    QString archiveName = QStringLiteral("archive");
    /// Write ZIP64 records even when no record or offset needs them (they are written whenever one
    /// reaches 4 GiB). For tests and tools that want to exercise ZIP64 readers.
    bool forceZip64 = false;
    /// Flush the data to the disk (fdatasync) before the file replaces its name: it survives a
    /// power cut. Off, the write is still atomic (a temporary file renamed into place, so a
    /// crash leaves the old file or the new one) but the kernel writes it back when it likes,
    /// as torch.save does; several times faster for big files on slow disks.
    bool durable = true;
};

/// Writes `root` as `torch.save` (PyTorch ≥ 1.6) does, so that Python's `torch.load(path)` returns
/// the equivalent object: a zip of stored records `<archive>/data.pkl` (pickle protocol 2),
/// `<archive>/byteorder`, one `<archive>/data/<key>` per storage (64-byte aligned, as
/// PyTorchStreamWriter aligns them) and `<archive>/version`.
///
/// The pickle names only globals that `torch.load(weights_only=True)` allows in current PyTorch:
/// `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`,
/// `torch.<X>Storage`, `torch.Size`, `torch.device`, `torch.<dtype>` and `_codecs.encode` (bytes,
/// written as Python's own protocol 2 writes them; the weights-only unpickler has no BINBYTES, and
/// allows `_codecs.encode` since PyTorch 2.5). Torch 1.13's weights-only unpickler is narrower: it
/// refuses floats (no BINFLOAT), bytes, torch.device and the dtype objects bfloat16, uint8 and bool
/// (tensors of every dtype are fine); checkpoints of tensors, ints, str, bool, None, containers
/// and torch.Size load there too. Only opcodes that unpickler implements are used, and every
/// non-empty list and dict is MARK + APPENDS/SETITEMS (libtorch's unpickler lacks APPEND/SETITEM).
///
/// Storages shared by several tensors are written once and stay shared after loading. Tensor
/// data streams from the storages to the file (no copy), with the CRC computed on the way (on a
/// second core for large records). Atomic (QSaveFile, synced to disk): the file is complete or
/// untouched. Every value is checked before anything is written; the error names the file, the
/// value's place (`root["model"]["fc.weight"]`) and the reason. Refused: Object values, tensors
/// whose storage is too small for their view, unhashable dict keys (list, dict), duplicate keys,
/// invalid device strings. Safe to call from a worker thread while nobody modifies `root`.
Status writeCheckpoint(const QString &path, const Value &root, const WriteOptions &options = {});

/// Whether `device` names a torch device as torch.device() reads it: a lower-case type ("cpu",
/// "cuda", "mps", "xla") with an optional ":N" index.
bool isDeviceString(QStringView device);

} // namespace ifs::ckpt
