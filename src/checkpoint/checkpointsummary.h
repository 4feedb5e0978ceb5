#pragma once

// What people read about checkpoint values: short texts for keys, scalars and shapes, and the
// statistics of a tensor's elements. Shared by `ifstudio-cli inspect` and the Checkpoints
// workspace.

#include "checkpoint/checkpointvalue.h"

#include <QList>
#include <QString>

#include <atomic>

namespace ifs::ckpt {

/// A dict key as text: a str as it is, an int or float as a number, other kinds as <type>.
QString keyText(const Value &key);

/// A short Python-like text for a scalar value ('text', 7, True, None, torch.float32,
/// cuda:0, [2, 3] for a torch.Size); empty for containers, tensors and objects.
QString scalarText(const Value &value);

/// "[64, 3, 7, 7]"; "[]" for a 0-dim tensor.
QString shapeText(const QList<qint64> &shape);

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
    QString error; ///< complex, or a view that does not fit its storage, or "cancelled"
    bool cancelled = false; ///< stopped early by `cancel`: the numbers are incomplete
    static constexpr int kHistogramBins = 64;
};

/// Computes the statistics of `tensor` (float16, bfloat16, float32, float64, ints, bool) from
/// its contiguousBytes(). Returns early with `cancelled` (and `error`) set when `cancel` becomes
/// true.
TensorStats computeTensorStats(const Tensor &tensor, const std::atomic_bool *cancel = nullptr);

} // namespace ifs::ckpt
