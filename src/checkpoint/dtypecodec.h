#pragma once

// Elements of torch's dtypes, decoded and encoded bit for bit as torch 1.13's CPU kernels do
// (c10/util/Half.h, c10/util/BFloat16.h and the vectorised conversions tensors go through).
// The one place in the tree that turns float16/bfloat16 bits into floats: the reader (numpy
// scalars), the tensor statistics of the CLI and the GUI, and the repair's casts and diffs use it.
// tst_checkpointrepair pins it against Python torch for every float16 and bfloat16 value.

#include "checkpoint/checkpointvalue.h"

#include <QtGlobal>

namespace ifs::ckpt {

/// float16 → float32 bits, exact. A NaN keeps its payload and becomes quiet, as the F16C
/// instruction torch's kernels use makes it (x.float() on a float16 tensor).
quint32 floatBitsFromHalf(quint16 half);
/// float16 → float, as floatBitsFromHalf().
float halfToFloat(quint16 half);

/// bfloat16 → float32 bits: the upper half of a float32, NaN payloads kept as they are.
quint32 floatBitsFromBFloat16(quint16 bfloat16);
/// bfloat16 → float, as floatBitsFromBFloat16().
float bfloat16ToFloat(quint16 bfloat16);

/// float32 bits → float16, rounded to nearest even; ±65520 and beyond become ±Inf, a NaN becomes
/// sign | 0x7E00 (torch's fp16_ieee_from_fp32_value).
quint16 halfFromFloatBits(quint32 bits);

/// float32 bits → bfloat16, rounded to nearest even. A NaN becomes `nan`: torch 1.13 writes
/// 0xFFFF from float32 and float64 (its vectorised kernel, which contiguous tensors go through)
/// and 0x7FC0 from float16 (c10::BFloat16's scalar rounding).
quint16 bfloat16FromFloatBits(quint32 bits, quint16 nan);

/// The element at `p` (little-endian, elementSize(dtype) bytes) as a double: floats exactly,
/// ints (int64 rounded to the nearest double), bool and uint8 as their byte, the real part of a
/// complex.
double elementToDouble(DType dtype, const char *p);

} // namespace ifs::ckpt
