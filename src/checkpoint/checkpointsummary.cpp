#include "checkpoint/checkpointsummary.h"

#include <QStringList>

#include <algorithm>
#include <cmath>
#include <cstring>
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

float halfToFloat(quint16 h)
{
    const quint32 sign = quint32(h & 0x8000) << 16;
    quint32 exponent = (h >> 10) & 0x1F;
    quint32 mantissa = h & 0x3FF;
    quint32 bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else { // subnormal: normalise
            exponent = 127 - 15 + 1;
            while (!(mantissa & 0x400)) {
                mantissa <<= 1;
                --exponent;
            }
            mantissa &= 0x3FF;
            bits = sign | (exponent << 23) | (mantissa << 13);
        }
    } else if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float result;
    std::memcpy(&result, &bits, 4);
    return result;
}

template<typename T>
T load(const char *p)
{
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
}

double element(DType dtype, const char *p)
{
    switch (dtype) {
    case DType::Float32:
        return load<float>(p);
    case DType::Float64:
        return load<double>(p);
    case DType::Float16:
        return halfToFloat(load<quint16>(p));
    case DType::BFloat16: {
        const quint32 bits = quint32(load<quint16>(p)) << 16;
        float value;
        std::memcpy(&value, &bits, 4);
        return value;
    }
    case DType::Int8:
        return load<qint8>(p);
    case DType::Int16:
        return load<qint16>(p);
    case DType::Int32:
        return load<qint32>(p);
    case DType::Int64:
        return double(load<qint64>(p));
    case DType::UInt8:
    case DType::Bool:
        return load<quint8>(p);
    default:
        return 0.0;
    }
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
    const Result<QByteArray> bytes = tensor.contiguousBytes();
    if (!bytes) {
        stats.error = bytes.errorMessage();
        return stats;
    }
    const int size = elementSize(dtype);
    const char *data = bytes->constData();
    const qint64 count = bytes->size() / size;
    stats.count = count;
    constexpr qint64 kChunk = 1 << 20;
    double mean = 0.0, m2 = 0.0;
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    for (qint64 i = 0; i < count; ++i) {
        if (cancel && i % kChunk == 0 && cancel->load()) {
            stats.cancelled = true;
            stats.error = QStringLiteral("cancelled");
            return stats;
        }
        const double x = element(dtype, data + i * size);
        if (std::isnan(x)) {
            ++stats.nans;
            continue;
        }
        if (std::isinf(x)) {
            ++stats.infs;
            continue;
        }
        if (x == 0.0)
            ++stats.zeros;
        ++stats.finite;
        const double delta = x - mean; // Welford: stable for large tensors
        mean += delta / double(stats.finite);
        m2 += delta * (x - mean);
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    if (stats.finite == 0)
        return stats;
    stats.min = lo;
    stats.max = hi;
    stats.mean = mean;
    // torch.std's default: the unbiased estimate.
    stats.std = stats.finite > 1 ? std::sqrt(m2 / double(stats.finite - 1)) : 0.0;
    stats.histogram = QList<qint64>(TensorStats::kHistogramBins, 0);
    const double width = (hi - lo) / TensorStats::kHistogramBins;
    for (qint64 i = 0; i < count; ++i) {
        if (cancel && i % kChunk == 0 && cancel->load()) {
            stats.cancelled = true;
            stats.error = QStringLiteral("cancelled");
            return stats;
        }
        const double x = element(dtype, data + i * size);
        if (!std::isfinite(x))
            continue;
        int bin = width > 0 ? int((x - lo) / width) : 0;
        bin = std::clamp(bin, 0, TensorStats::kHistogramBins - 1);
        ++stats.histogram[bin];
    }
    return stats;
}

} // namespace ifs::ckpt
