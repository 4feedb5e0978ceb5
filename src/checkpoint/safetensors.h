#pragma once

#include "base/result.h"
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointvalue.h"

#include <QMap>
#include <QString>
#include <QStringList>

#include <functional>
#include <memory>

/// Hugging Face's safetensors format: an 8-byte little-endian header length, a JSON header
/// (`{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...,
/// "__metadata__": {"key": "text"}}`) and the raw little-endian tensor data.
namespace ifs::ckpt {

/// Reads a safetensors file: CheckpointFile::root is an OrderedDict name → contiguous Tensor in
/// the order of their data in the file, metadata holds `__metadata__`. The header is checked as
/// the reference implementation checks it (header at most 100 MB, known dtypes, shapes that
/// match the byte ranges, ranges inside the data, neither overlapping nor leaving gaps).
/// Usually reached through readCheckpoint(), which recognises the format from the content.
Result<CheckpointFile> readSafetensors(const QString &path, const ReadOptions &options = {});

/// Writes a state dict (a Dict or OrderedDict of str → Tensor) as safetensors, atomically, in its
/// order, with `metadata` as `__metadata__`. Tensors are written contiguous (views are copied out).
/// safetensors has no storage sharing: tensors that share a storage (tied weights, views) are each
/// written in full, so loading gives independent tensors; `notes` (when given) lists them.
/// Refused with the key named: non-tensor values, complex128 (safetensors has no such dtype),
/// tensors whose view does not fit their storage.
Status writeSafetensors(const QString &path, const Value &stateDict,
                        const QMap<QString, QString> &metadata = {}, QStringList *notes = nullptr);

/// safetensors' dtype names: "F32", "BF16", "BOOL", "C64"; empty for complex128.
QString safetensorsDTypeName(DType dtype);

namespace detail {
/// Gives a tensor its data: fills `storage` with the `size` bytes at `offset` in the file.
using SafetensorsData
    = std::function<void(Storage &storage, const QString &name, qint64 offset, qint64 size)>;
/// readSafetensors() from the first `available` bytes of a file of `fileSize` bytes, at `data`:
/// at least its header (8 + the length it gives, or the whole file when shorter); `attach` gives
/// the tensors their data. Errors are reasons without the file's name.
Result<CheckpointFile> readSafetensorsBuffer(const char *data, qint64 available, qint64 fileSize,
                                             const SafetensorsData &attach,
                                             const ReadOptions &options);
/// The bytes readSafetensorsBuffer() needs at the start of a file that starts with `first8`.
qint64 safetensorsHeaderBytes(const char *first8, qint64 fileSize);
/// Whether a buffer starts like a safetensors file (a sane header length, then '{').
bool looksLikeSafetensors(const char *data, qint64 size);
} // namespace detail

} // namespace ifs::ckpt
