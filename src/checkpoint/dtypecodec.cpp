#include "checkpoint/dtypecodec.h"

#include <QtEndian>

#include <bit>

namespace ifs::ckpt {

quint32 floatBitsFromHalf(quint16 half)
{
    const quint32 sign = quint32(half & 0x8000u) << 16;
    const quint32 exponent = (half >> 10) & 0x1Fu;
    quint32 mantissa = half & 0x3FFu;
    if (exponent == 0x1F)
        return sign | 0x7F800000u | (mantissa << 13) | (mantissa ? 0x400000u : 0u);
    if (exponent != 0)
        return sign | ((exponent + 112u) << 23) | (mantissa << 13);
    if (mantissa == 0)
        return sign;
    // A subnormal: normalise it.
    quint32 e = 113;
    while (!(mantissa & 0x400u)) {
        mantissa <<= 1;
        --e;
    }
    return sign | (e << 23) | ((mantissa & 0x3FFu) << 13);
}

float halfToFloat(quint16 half)
{
    return std::bit_cast<float>(floatBitsFromHalf(half));
}

quint32 floatBitsFromBFloat16(quint16 bfloat16)
{
    return quint32(bfloat16) << 16;
}

float bfloat16ToFloat(quint16 bfloat16)
{
    return std::bit_cast<float>(floatBitsFromBFloat16(bfloat16));
}

quint16 halfFromFloatBits(quint32 bits)
{
    const quint32 sign = (bits >> 16) & 0x8000u;
    const quint32 a = bits & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return quint16(sign | 0x7E00u);
    if (a >= 0x477FF000u) // 65520 and above round to infinity
        return quint16(sign | 0x7C00u);
    if (a >= 0x38800000u) { // normal in float16: rebias the exponent, round away 13 bits
        const quint32 m = a - 0x38000000u;
        return quint16(sign | ((m + 0x0FFFu + ((m >> 13) & 1u)) >> 13));
    }
    if (a <= 0x33000000u) // at most 2^-25, half the smallest subnormal: ties to zero
        return quint16(sign);
    const int shift = 126 - int(a >> 23); // 14..24: the value in units of 2^-24
    const quint32 mantissa = (a & 0x7FFFFFu) | 0x800000u;
    quint32 q = mantissa >> shift;
    const quint32 rest = mantissa & ((1u << shift) - 1u);
    const quint32 halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (q & 1u)))
        ++q;
    return quint16(sign | q);
}

quint16 bfloat16FromFloatBits(quint32 bits, quint16 nan)
{
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
        return nan;
    return quint16((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

double elementToDouble(DType dtype, const char *p)
{
    switch (dtype) {
    case DType::Float32:
    case DType::Complex64:
        return std::bit_cast<float>(qFromLittleEndian<quint32>(p));
    case DType::Float64:
    case DType::Complex128:
        return std::bit_cast<double>(qFromLittleEndian<quint64>(p));
    case DType::Float16:
        return halfToFloat(qFromLittleEndian<quint16>(p));
    case DType::BFloat16:
        return bfloat16ToFloat(qFromLittleEndian<quint16>(p));
    case DType::Int8:
        return qint8(p[0]);
    case DType::Int16:
        return qFromLittleEndian<qint16>(p);
    case DType::Int32:
        return qFromLittleEndian<qint32>(p);
    case DType::Int64:
        return double(qFromLittleEndian<qint64>(p));
    case DType::UInt8:
    case DType::Bool:
        return quint8(p[0]);
    }
    return 0.0;
}

} // namespace ifs::ckpt
