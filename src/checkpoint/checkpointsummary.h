#pragma once

// What people read about checkpoint values: short texts for keys, scalars and shapes, and the
// statistics of a tensor's elements. Shared by `ifstudio-cli inspect` and the Checkpoints
// workspace.

#include "checkpoint/checkpointvalue.h"

#include <QList>
#include <QMap>
#include <QString>
#include <QStringList>

#include <atomic>

namespace ifs::ckpt {

/// A dict key as text: a str as it is, an int or float as a number, other kinds as <type>.
QString keyText(const Value &key);

/// A short Python-like text for a scalar value ('text', 7, True, None, torch.float32,
/// cuda:0, [2, 3] for a torch.Size); empty for containers, tensors and objects.
QString scalarText(const Value &value);

/// "[64, 3, 7, 7]"; "[]" for a 0-dim tensor.
QString shapeText(const QList<qint64> &shape);

/// Tensors of one kind (a dtype, a device) under a value.
struct TensorTally
{
    qint64 tensors = 0;
    qint64 elements = 0;
    qint64 bytes = 0; ///< of distinct storages, as TensorTotals::bytes
};

/// What the tensors under a value hold: the figures `ifstudio-cli inspect` and the Checkpoints
/// workspace show, so that both give the same numbers for the same file.
struct TensorTotals
{
    qint64 tensors = 0; ///< tensor values; a tensor that appears twice (tied weights) counts twice
    qint64 elements = 0; ///< numel() of every tensor, summed
    /// The tensor bytes: the distinct storages the tensors view, each whole and once. What the
    /// file holds and what loading it takes (torch.save writes a view's whole storage).
    qint64 bytes = 0;
    /// numel() × element size of every tensor, summed: what separate contiguous copies of every
    /// view would take. More than `bytes` when tensors share storage (tied weights, views), less
    /// when views leave parts of their storage unused.
    qint64 viewBytes = 0;
    QMap<QString, TensorTally> byDType; ///< by dtypeName(); a storage's bytes under its dtype
    QMap<QString, TensorTally> byDevice; ///< by saved location (Storage::device)
    QStringList dtypes; ///< dtype names in order of first appearance
    QStringList devices; ///< locations in order of first appearance
};

/// Counts every tensor under `root` (as walkValues() finds them: values, object args and states).
TensorTotals tensorTotals(const Value &root);

/// Statistics of one tensor's elements.
struct TensorStats
{
    QString key;
    qint64 count = 0; ///< elements
    qint64 finite = 0; ///< elements that are neither NaN nor ±Inf
    qint64 nans = 0;
    qint64 infs = 0;
    qint64 zeros = 0;
    /// Over the finite elements; std is the unbiased estimate, as torch.std() by default.
    double min = 0.0, max = 0.0, mean = 0.0, std = 0.0;
    QList<qint64> histogram; ///< kHistogramBins bins from min to max over the finite elements
    QString error; ///< complex, a view that does not fit its storage, unreadable, "cancelled"
    bool cancelled = false; ///< stopped early by `cancel`: the numbers are incomplete
    /// The data could not be read (a file changed since it was opened, a damaged record): `error`
    /// says why; a problem of the file, where the others are of the tensor.
    bool unreadable = false;
    static constexpr int kHistogramBins = 64;
};

/// Computes the statistics of `tensor` (float16, bfloat16, float32, float64, ints, bool) in two
/// passes over its elements, in bounded memory: a contiguous view is read piece by piece from its
/// storage (Storage::visitBytes: a storage left in its file is streamed, never loaded whole),
/// other views from their contiguousBytes(). Data that cannot be read (a file changed since it
/// was opened, a damaged record) sets `error`. Returns early with `cancelled` (and `error`) set
/// when `cancel` becomes true.
TensorStats computeTensorStats(const Tensor &tensor, const std::atomic_bool *cancel = nullptr);

} // namespace ifs::ckpt
