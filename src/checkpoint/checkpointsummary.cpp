#include "checkpoint/checkpointsummary.h"

#include "checkpoint/checkpointwalk.h"
#include "checkpoint/dtypecodec.h"

#include <QSet>

#include <QStringList>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ifs::ckpt {

QString keyText(const Value &key)
{
    if (key.isString())
        return key.toString();
    if (key.isInt())
        return QString::number(key.toInt());
    if (key.isBool())
        return key.toBool() ? QStringLiteral("True") : QStringLiteral("False");
    if (key.isFloat())
        return QString::number(key.toDouble());
    return QStringLiteral("<%1>").arg(key.typeName());
}

QString shapeText(const QList<qint64> &shape)
{
    QStringList parts;
    for (qint64 size : shape)
        parts.append(QString::number(size));
    return u'[' + parts.join(QStringLiteral(", ")) + u']';
}

QString scalarText(const Value &value)
{
    switch (value.kind()) {
    case Value::Kind::None:
        return QStringLiteral("None");
    case Value::Kind::Bool:
        return value.toBool() ? QStringLiteral("True") : QStringLiteral("False");
    case Value::Kind::Int:
        return QString::number(value.toInt());
    case Value::Kind::Float:
        return QString::number(value.toDouble(), 'g', 8);
    case Value::Kind::String: {
        QString text = value.toString();
        if (text.size() > 80)
            text = text.left(77) + QStringLiteral("…");
        return u'\'' + text + u'\'';
    }
    case Value::Kind::Bytes:
        return QStringLiteral("b'…' (%1 bytes)").arg(value.toBytes().size());
    case Value::Kind::Device:
        return value.toString();
    case Value::Kind::DType:
        return QStringLiteral("torch.") + dtypeName(value.toDType());
    case Value::Kind::Size:
        return shapeText(value.toSize());
    default:
        return {};
    }
}

namespace {

/// Sums that stay at the maximum rather than overflow (a broadcast view of a hostile file may
/// claim more elements than exist).
void addTo(qint64 &total, qint64 amount)
{
    if (__builtin_add_overflow(total, amount, &total))
        total = std::numeric_limits<qint64>::max();
}

void addTensor(TensorTally &tally, qint64 elements, qint64 bytes)
{
    tally.tensors += 1;
    addTo(tally.elements, elements);
    addTo(tally.bytes, bytes);
}

} // namespace

TensorTotals tensorTotals(const Value &root)
{
    TensorTotals totals;
    QSet<const Storage *> seen;
    forEachTensor(root, [&](WalkPath, const Tensor &tensor) {
        const QString dtype = dtypeName(tensor.dtype());
        const QString device = tensor.device();
        const qint64 elements = tensor.numel();
        qint64 bytes = 0;
        if (tensor.storage && !seen.contains(tensor.storage.get())) {
            seen.insert(tensor.storage.get());
            bytes = tensor.storage->byteCount();
        }
        totals.tensors += 1;
        addTo(totals.elements, elements);
        addTo(totals.bytes, bytes);
        addTo(totals.viewBytes, tensor.byteSize());
        addTensor(totals.byDType[dtype], elements, bytes);
        addTensor(totals.byDevice[device], elements, bytes);
        if (!totals.dtypes.contains(dtype))
            totals.dtypes.append(dtype);
        if (!totals.devices.contains(device))
            totals.devices.append(device);
    });
    return totals;
}

namespace {

/// Hands a tensor's elements to `visit` piece by piece: straight from its storage when the view
/// is contiguous (streamed from the file when it was read on demand, so that memory stays bounded
/// however large the storage), otherwise from a contiguous copy.
class ElementPieces
{
public:
    explicit ElementPieces(const Tensor &tensor)
        : m_tensor(tensor)
    { }

    Status prepare()
    {
        if (m_tensor.isContiguous())
            return success();
        Result<QByteArray> bytes = m_tensor.contiguousBytes();
        if (!bytes)
            return bytes.error();
        m_copy = std::move(bytes).value();
        return success();
    }

    Status visit(const ByteVisitor &visit) const
    {
        if (!m_tensor.isContiguous()) {
            if (!m_copy.isEmpty())
                visit(m_copy.constData(), m_copy.size());
            return success();
        }
        return m_tensor.storage->visitBytes(m_tensor.offset * elementSize(m_tensor.dtype()),
                                            m_tensor.byteSize(), visit);
    }

private:
    const Tensor &m_tensor;
    QByteArray m_copy;
};

/// Calls `use(x)` with every element of the tensor as a double, in order, checking `cancel`
/// every 2^20 elements. False (with stats' error, cancelled or unreadable set) when it was
/// cancelled or its bytes could not be read.
template<typename Use>
bool visitElements(const ElementPieces &pieces, DType dtype, const std::atomic_bool *cancel,
                   TensorStats &stats, Use use)
{
    const int size = elementSize(dtype);
    constexpr qint64 kChunk = 1 << 20;
    qint64 seen = 0; // elements so far, for the cancel checks
    bool cancelled = false;
    const Status read = pieces.visit([&](const char *data, qint64 bytes) {
        const qint64 count = bytes / size;
        for (qint64 i = 0; i < count; ++i) {
            if (cancel && (seen + i) % kChunk == 0 && cancel->load()) {
                cancelled = true;
                return false;
            }
            use(elementToDouble(dtype, data + i * size));
        }
        seen += count;
        return true;
    });
    if (cancelled) {
        stats.cancelled = true;
        stats.error = QStringLiteral("cancelled");
        return false;
    }
    if (!read) {
        stats.error = read.errorMessage();
        stats.unreadable = true;
        return false;
    }
    return true;
}

} // namespace

TensorStats computeTensorStats(const Tensor &tensor, const std::atomic_bool *cancel)
{
    TensorStats stats;
    const DType dtype = tensor.dtype();
    if (dtype == DType::Complex64 || dtype == DType::Complex128) {
        stats.error = QStringLiteral("Statistics of complex tensors are not computed.");
        return stats;
    }
    if (Status layout = tensor.checkLayout(); !layout) {
        stats.error = layout.errorMessage();
        return stats;
    }
    stats.count = tensor.numel();
    if (stats.count == 0)
        return stats;
    ElementPieces pieces(tensor);
    if (Status prepared = pieces.prepare(); !prepared) {
        stats.error = prepared.errorMessage();
        stats.unreadable = true; // the layout was checked above: reading failed
        return stats;
    }
    double mean = 0.0, m2 = 0.0;
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    const bool counted = visitElements(pieces, dtype, cancel, stats, [&](double x) {
        if (std::isnan(x)) {
            ++stats.nans;
            return;
        }
        if (std::isinf(x)) {
            ++stats.infs;
            return;
        }
        if (x == 0.0)
            ++stats.zeros;
        ++stats.finite;
        const double delta = x - mean; // Welford: stable for large tensors
        mean += delta / double(stats.finite);
        m2 += delta * (x - mean);
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    });
    if (!counted || stats.finite == 0)
        return stats;
    stats.min = lo;
    stats.max = hi;
    stats.mean = mean;
    // torch.std's default: the unbiased estimate.
    stats.std = stats.finite > 1 ? std::sqrt(m2 / double(stats.finite - 1)) : 0.0;
    stats.histogram = QList<qint64>(TensorStats::kHistogramBins, 0);
    const double width = (hi - lo) / TensorStats::kHistogramBins;
    if (!(width > 0)) {
        // Every finite element falls in the first bin: no second pass over the data.
        stats.histogram[0] = stats.finite;
        return stats;
    }
    visitElements(pieces, dtype, cancel, stats, [&](double x) {
        if (!std::isfinite(x))
            return;
        ++stats.histogram[std::clamp(int((x - lo) / width), 0, TensorStats::kHistogramBins - 1)];
    });
    return stats;
}

} // namespace ifs::ckpt
