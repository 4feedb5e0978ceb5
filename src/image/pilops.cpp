#include "image/pilops.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numbers>
#include <tuple>
#include <utility>
#include <vector>

// Pillow is built for plain x86-64, where a * b + c is never fused. A build for a CPU with FMA
// would let the compiler fuse the interpolation arithmetic and drift from Pillow by one here and
// there, so forbid it where it could happen.
#if defined(__FMA__)
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#endif

// The resampler's inner loops are integer multiply-adds along contiguous bytes; AVX2 does 8 a
// cycle where baseline x86-64 has no 32-bit vector multiply. Pick at load time where supported.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define IFS_PIL_HOT __attribute__((target_clones("avx2", "default")))
#else
#define IFS_PIL_HOT
#endif

namespace ifs::pil {

namespace {

// --- Images -----------------------------------------------------------------------------------

bool isGray(const QImage &image)
{
    return image.format() == QImage::Format_Grayscale8;
}

/// The image in one of the two formats the operations work on (anything else becomes RGB).
QImage normalized(const QImage &image)
{
    if (image.format() == QImage::Format_Grayscale8 || image.format() == QImage::Format_RGB888)
        return image;
    return image.convertToFormat(QImage::Format_RGB888);
}

int channelsOf(const QImage &image)
{
    return isGray(image) ? 1 : 3;
}

/// A read-only view of an image's rows, for per-pixel loops (QImage::constScanLine is a call).
struct Pixels
{
    explicit Pixels(const QImage &image)
        : bits(image.constBits())
        , stride(image.bytesPerLine())
        , width(image.width())
        , height(image.height())
    { }
    const uchar *row(int y) const { return bits + y * stride; }

    const uchar *bits;
    qsizetype stride;
    int width;
    int height;
};

uint8_t clip8(int v)
{
    return uint8_t(v <= 0 ? 0 : v < 256 ? v : 255);
}

/// Fills an image with PIL's Image.new(mode, size, fill) colour.
void fillWith(QImage &image, const Fill &fill)
{
    const int channels = channelsOf(image);
    const uint8_t c[3] = {clip8(fill[0]), clip8(fill[1]), clip8(fill[2])};
    const qsizetype stride = image.bytesPerLine();
    uchar *bits = image.bits();
    for (int y = 0; y < image.height(); ++y) {
        uchar *out = bits + y * stride;
        if (channels == 1 || (c[0] == c[1] && c[1] == c[2])) {
            std::memset(out, c[0], size_t(image.width()) * channels);
        } else {
            for (int x = 0; x < image.width(); ++x, out += 3) {
                out[0] = c[0];
                out[1] = c[1];
                out[2] = c[2];
            }
        }
    }
}

/// A new image of the given size and format, all pixels set to `fill`.
QImage newImage(QSize size, QImage::Format format, const Fill &fill = {0, 0, 0})
{
    QImage image(size, format);
    if (!image.isNull())
        fillWith(image, fill);
    return image;
}

/// Python's float `x % m` (the result has the sign of m).
double pyMod(double x, double m)
{
    double r = std::fmod(x, m);
    if (r != 0.0) {
        if ((m < 0) != (r < 0))
            r += m;
    } else {
        r = std::copysign(0.0, m);
    }
    return r;
}

/// Python's round(x, 15): correctly rounded to 15 decimals, half to even, via the decimal
/// string as CPython does it (to_chars/from_chars are exact and locale-free).
double pyRound15(double x)
{
    char buf[400];
    const auto printed = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed, 15);
    if (printed.ec != std::errc())
        return x;
    double result = x;
    std::from_chars(buf, printed.ptr, result);
    return result;
}

/// C's (int) conversion of a double, without its undefined behaviour out of range.
int truncToInt(double v)
{
    if (!(v > double(INT_MIN)))
        return INT_MIN;
    if (!(v < double(INT_MAX)))
        return INT_MAX;
    return int(v);
}

/// Geometry.c's FLOOR(v).
int pilFloor(double v)
{
    return v < 0.0 ? truncToInt(std::floor(v)) : truncToInt(v);
}

/// Geometry.c's COORD(v): -1 for anything left of 0.
int pilCoord(double v)
{
    return v < 0.0 ? -1 : truncToInt(v);
}

// --- Resample.c -------------------------------------------------------------------------------

// 8 bits for the result, 2 for the overflow of filters with negative lobes.
constexpr int kPrecisionBits = 32 - 8 - 2;

double boxFilter(double x)
{
    return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

double bilinearFilter(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

double hammingFilter(double x)
{
    if (x < 0.0)
        x = -x;
    if (x == 0.0)
        return 1.0;
    if (x >= 1.0)
        return 0.0;
    x = x * std::numbers::pi;
    // Pillow writes these constants as floats: keep their float values.
    return std::sin(x) / x * (double(0.54f) + double(0.46f) * std::cos(x));
}

double bicubicFilter(double x)
{
    constexpr double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

double sincFilter(double x)
{
    if (x == 0.0)
        return 1.0;
    x = x * std::numbers::pi;
    return std::sin(x) / x;
}

double lanczosFilter(double x)
{
    if (-3.0 <= x && x < 3.0)
        return sincFilter(x) * sincFilter(x / 3);
    return 0.0;
}

struct FilterDef
{
    double (*function)(double);
    double support;
};

FilterDef filterDef(Filter filter)
{
    switch (filter) {
    case Filter::Box:
        return {boxFilter, 0.5};
    case Filter::Bilinear:
        return {bilinearFilter, 1.0};
    case Filter::Hamming:
        return {hammingFilter, 1.0};
    case Filter::Bicubic:
        return {bicubicFilter, 2.0};
    case Filter::Lanczos:
        return {lanczosFilter, 3.0};
    case Filter::Nearest:
        break;
    }
    return {bilinearFilter, 1.0};
}

/// One pass's fixed-point coefficients: output pixel i reads `count[i]` inputs from `first[i]`,
/// weighted by k[i * ksize ...].
struct Coeffs
{
    int ksize = 0;
    std::vector<int> first;
    std::vector<int> count;
    std::vector<int32_t> k;
};

/// Resample.c's precompute_coeffs + normalize_coeffs_8bpc. `in0`/`in1` are floats as in Pillow,
/// which keeps the box in single precision.
Coeffs precomputeCoeffs(int inSize, float in0, float in1, int outSize, const FilterDef &filter)
{
    double scale = double(in1 - in0) / outSize;
    double filterScale = scale < 1.0 ? 1.0 : scale;
    const double support = filter.support * filterScale;
    Coeffs c;
    c.ksize = int(std::ceil(support)) * 2 + 1;
    c.first.resize(outSize);
    c.count.resize(outSize);
    c.k.assign(size_t(outSize) * c.ksize, 0);
    std::vector<double> weights(c.ksize);
    for (int xx = 0; xx < outSize; ++xx) {
        const double center = in0 + (xx + 0.5) * scale;
        const double ss = 1.0 / filterScale;
        int xmin = int(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > inSize)
            xmax = inSize;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            const double w = filter.function((x + xmin - center + 0.5) * ss);
            weights[x] = w;
            ww += w;
        }
        int32_t *k = &c.k[size_t(xx) * c.ksize];
        for (int x = 0; x < xmax; ++x) {
            double w = weights[x];
            if (ww != 0.0)
                w /= ww;
            k[x] = w < 0 ? int32_t(-0.5 + w * (1 << kPrecisionBits))
                         : int32_t(0.5 + w * (1 << kPrecisionBits));
        }
        c.first[xx] = xmin;
        c.count[xx] = std::max(xmax, 0);
    }
    return c;
}

/// Pillow's clip8 on a fixed-point sum (its lookup table covers the sums that can occur).
uint8_t clipFixed(int32_t ss)
{
    return clip8(ss >> kPrecisionBits);
}

/// Copies `count` pixels of C bytes from src (pixels `srcStep` apart) to dst (`dstStep` apart).
/// RGB pixels move as 4-byte words, all but the last: each writes one byte past its pixel, which
/// the next copy overwrites or which the caller leaves spare, and reads one byte past it.
template<int C>
inline void copyPixels(uchar *dst, qsizetype dstStep, const uchar *src, qsizetype srcStep,
                       int count)
{
    if (count <= 0)
        return;
    if constexpr (C == 3) {
        for (int i = 0; i < count - 1; ++i, dst += dstStep, src += srcStep)
            std::memcpy(dst, src, 4);
    } else {
        for (int i = 0; i < count - 1; ++i, dst += dstStep, src += srcStep)
            std::memcpy(dst, src, C);
    }
    std::memcpy(dst, src, C);
}

/// Horizontal pass over source rows [firstRow, firstRow + rows) into `dst`.
///
/// Pillow walks each row pixel by pixel; here a block of rows is first transposed so that the
/// same source column of every row in the block lies side by side. Each tap then multiplies one
/// contiguous run of bytes by one coefficient, which the compiler vectorises. Integer sums are
/// exact, so the order does not change a single result.
template<int C>
IFS_PIL_HOT void resampleHorizontal(const uchar *src, qsizetype srcStride, int firstRow, int rows,
                                    uchar *dst, qsizetype dstStride, int outWidth, const Coeffs &c)
{
    constexpr int32_t half = 1 << (kPrecisionBits - 1);
    constexpr int kRows = C == 1 ? 32 : 16;
    constexpr int kLanes = kRows * C;
    int colBegin = INT_MAX;
    int colEnd = 0;
    for (int xx = 0; xx < outWidth; ++xx) {
        colBegin = std::min(colBegin, c.first[xx]);
        colEnd = std::max(colEnd, c.first[xx] + c.count[xx]);
    }
    if (colEnd <= colBegin)
        colBegin = colEnd = 0;
    // A column of the block holds kLanes bytes and 4 spare ones for the copies below.
    constexpr int kStride = kLanes + 4;
    const int columns = colEnd - colBegin;
    std::vector<uchar> block(size_t(columns + 1) * kStride);
    std::vector<uchar> results(size_t(outWidth) * kStride);
    alignas(64) int32_t acc[kLanes];
    for (int y0 = 0; y0 < rows; y0 += kRows) {
        const int n = std::min(kRows, rows - y0);
        for (int r = 0; r < n; ++r) {
            copyPixels<C>(block.data() + r * C, kStride,
                          src + (firstRow + y0 + r) * srcStride + colBegin * C, C, columns);
        }
        for (int xx = 0; xx < outWidth; ++xx) {
            const uchar *p = block.data() + size_t(c.first[xx] - colBegin) * kStride;
            const int32_t *k = &c.k[size_t(xx) * c.ksize];
            const int taps = c.count[xx];
            for (int i = 0; i < kLanes; ++i)
                acc[i] = half;
            for (int x = 0; x < taps; ++x, p += kStride) {
                const int32_t kv = k[x];
                for (int i = 0; i < kLanes; ++i)
                    acc[i] += p[i] * kv;
            }
            uchar *result = results.data() + size_t(xx) * kStride;
            for (int i = 0; i < kLanes; ++i) {
                const int32_t v = acc[i] >> kPrecisionBits;
                result[i] = uchar(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
        for (int r = 0; r < n; ++r)
            copyPixels<C>(dst + (y0 + r) * dstStride, C, results.data() + r * C, kStride, outWidth);
    }
}

/// Vertical pass over rows of `rowBytes` bytes. The bytes of a row are independent, so they are
/// taken in runs small enough to keep their sums in vector registers across all the taps.
IFS_PIL_HOT void resampleVertical(const uchar *src, qsizetype srcStride, uchar *dst,
                                  qsizetype dstStride, int rowBytes, int outHeight, const Coeffs &c)
{
    constexpr int32_t half = 1 << (kPrecisionBits - 1);
    constexpr int kRun = 32;
    for (int yy = 0; yy < outHeight; ++yy) {
        const int32_t *k = &c.k[size_t(yy) * c.ksize];
        const int taps = c.count[yy];
        const uchar *in = src + c.first[yy] * srcStride;
        uchar *out = dst + yy * dstStride;
        int i = 0;
        for (; i + kRun <= rowBytes; i += kRun) {
            int32_t acc[kRun];
            for (int j = 0; j < kRun; ++j)
                acc[j] = half;
            const uchar *p = in + i;
            for (int y = 0; y < taps; ++y, p += srcStride) {
                const int32_t kv = k[y];
                for (int j = 0; j < kRun; ++j)
                    acc[j] += p[j] * kv;
            }
            for (int j = 0; j < kRun; ++j) {
                const int32_t v = acc[j] >> kPrecisionBits;
                out[i + j] = uchar(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
        for (; i < rowBytes; ++i) {
            int32_t acc = half;
            const uchar *p = in + i;
            for (int y = 0; y < taps; ++y, p += srcStride)
                acc += *p * k[y];
            out[i] = clipFixed(acc);
        }
    }
}

/// Resample.c's ImagingResampleInner for 8-bit images.
QImage resampleImage(const QImage &src, QSize size, Filter filter, const float box[4])
{
    const FilterDef def = filterDef(filter);
    const int channels = channelsOf(src);
    const int xsize = size.width();
    const int ysize = size.height();
    // Pillow compares box[2] with the output width here (not the input's): kept as it is.
    const bool needHorizontal = xsize != src.width() || box[0] != 0.0f || box[2] != xsize;
    const bool needVertical = ysize != src.height() || box[1] != 0.0f || box[3] != ysize;

    const Coeffs horiz = precomputeCoeffs(src.width(), box[0], box[2], xsize, def);
    Coeffs vert = precomputeCoeffs(src.height(), box[1], box[3], ysize, def);

    // Only the source rows that the vertical pass reads go through the horizontal pass.
    const int yFirst = vert.first[0];
    const int yLast = vert.first[ysize - 1] + vert.count[ysize - 1];

    const uchar *in = src.constBits();
    qsizetype inStride = src.bytesPerLine();
    int inWidth = src.width();
    std::vector<uchar> temp;
    QImage out;
    if (needHorizontal) {
        for (int &first : vert.first)
            first -= yFirst;
        const int rows = std::max(yLast - yFirst, 0);
        const qsizetype tempStride = qsizetype(xsize) * channels;
        if (!needVertical) {
            out = QImage(xsize, rows, src.format());
            if (out.isNull())
                return {};
            if (channels == 1)
                resampleHorizontal<1>(in, inStride, yFirst, rows, out.bits(), out.bytesPerLine(),
                                      xsize, horiz);
            else
                resampleHorizontal<3>(in, inStride, yFirst, rows, out.bits(), out.bytesPerLine(),
                                      xsize, horiz);
            return out;
        }
        temp.resize(size_t(tempStride) * rows);
        if (channels == 1)
            resampleHorizontal<1>(in, inStride, yFirst, rows, temp.data(), tempStride, xsize,
                                  horiz);
        else
            resampleHorizontal<3>(in, inStride, yFirst, rows, temp.data(), tempStride, xsize,
                                  horiz);
        in = temp.data();
        inStride = tempStride;
        inWidth = xsize;
    }
    if (needVertical) {
        out = QImage(inWidth, ysize, src.format());
        if (out.isNull())
            return {};
        resampleVertical(in, inStride, out.bits(), out.bytesPerLine(), inWidth * channels, ysize,
                         vert);
        return out;
    }
    return src.copy();
}

// --- Geometry.c -------------------------------------------------------------------------------

/// Copies one pixel of `channels` bytes.
inline void copyPixel(uchar *out, const uchar *in, int channels)
{
    out[0] = in[0];
    if (channels == 3) {
        out[1] = in[1];
        out[2] = in[2];
    }
}

/// ImagingScaleAffine: nearest neighbour for an axis-aligned affine map (a[1] == a[3] == 0),
/// with Pillow's double accumulators. `dst` already holds the background.
void scaleAffine(const QImage &src, QImage &dst, const std::array<double, 6> &a)
{
    const int channels = channelsOf(src);
    const int outWidth = dst.width();
    std::vector<int> xintab(outWidth);
    double xo = a[2] + a[0] * 0.5;
    double yo = a[5] + a[4] * 0.5;
    int xmin = outWidth;
    int xmax = 0;
    for (int x = 0; x < outWidth; ++x) {
        const int xin = pilCoord(xo);
        if (xin >= 0 && xin < src.width()) {
            xmax = x + 1;
            if (x < xmin)
                xmin = x;
            xintab[x] = xin * channels;
        }
        xo += a[0];
    }
    const qsizetype dstStride = dst.bytesPerLine();
    uchar *dstBits = dst.bits();
    for (int y = 0; y < dst.height(); ++y) {
        const int yi = pilCoord(yo);
        if (yi >= 0 && yi < src.height()) {
            const uchar *in = src.constScanLine(yi);
            uchar *out = dstBits + y * dstStride;
            if (channels == 1) {
                for (int x = xmin; x < xmax; ++x)
                    out[x] = in[xintab[x]];
            } else {
                for (int x = xmin; x < xmax; ++x)
                    copyPixel(out + x * 3, in + xintab[x], 3);
            }
        }
        yo += a[4];
    }
}

bool checkFixed(const std::array<double, 6> &a, int x, int y)
{
    return std::fabs(x * a[0] + y * a[1] + a[2]) < 32768.0
        && std::fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

/// affine_fixed: nearest neighbour in 16.16 fixed point, 32-bit wrap-around arithmetic as in C.
void affineFixed(const QImage &src, QImage &dst, const std::array<double, 6> &a)
{
    const int channels = channelsOf(src);
    const auto fix = [](double v) {
        return uint32_t(pilFloor(v * 65536.0 + 0.5));
    };
    const uint32_t a0 = fix(a[0]);
    const uint32_t a1 = fix(a[1]);
    const uint32_t a3 = fix(a[3]);
    const uint32_t a4 = fix(a[4]);
    uint32_t a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5);
    uint32_t a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
    const Pixels in(src);
    const int xsize = src.width();
    const int ysize = src.height();
    const qsizetype dstStride = dst.bytesPerLine();
    uchar *dstBits = dst.bits();
    for (int y = 0; y < dst.height(); ++y) {
        uint32_t xx = a2;
        uint32_t yy = a5;
        uchar *out = dstBits + y * dstStride;
        for (int x = 0; x < dst.width(); ++x, out += channels) {
            const int xin = int32_t(xx) >> 16;
            if (xin >= 0 && xin < xsize) {
                const int yin = int32_t(yy) >> 16;
                if (yin >= 0 && yin < ysize)
                    copyPixel(out, in.row(yin) + xin * channels, channels);
            }
            xx += a0;
            yy += a3;
        }
        a2 += a1;
        a5 += a4;
    }
}

/// The floating-point nearest neighbour path for maps beyond the fixed-point range.
void affineFloat(const QImage &src, QImage &dst, const std::array<double, 6> &a)
{
    const int channels = channelsOf(src);
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
    double yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    const Pixels in(src);
    const qsizetype dstStride = dst.bytesPerLine();
    uchar *dstBits = dst.bits();
    for (int y = 0; y < dst.height(); ++y) {
        double xx = xo;
        double yy = yo;
        uchar *out = dstBits + y * dstStride;
        for (int x = 0; x < dst.width(); ++x, out += channels) {
            const int xin = pilCoord(xx);
            if (xin >= 0 && xin < src.width()) {
                const int yin = pilCoord(yy);
                if (yin >= 0 && yin < src.height())
                    copyPixel(out, in.row(yin) + xin * channels, channels);
            }
            xx += a[0];
            yy += a[3];
        }
        xo += a[1];
        yo += a[4];
    }
}

/// Geometry.c's bilinear_filter8 / bilinear_filter32RGB for one output pixel (C channels).
template<int C>
inline bool bilinearSample(const Pixels &src, double xin, double yin, uchar *out)
{
    const int w = src.width;
    const int h = src.height;
    if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h)
        return false;
    xin -= 0.5;
    yin -= 0.5;
    const int x = pilFloor(xin);
    const int y = pilFloor(yin);
    const double dx = xin - x;
    const double dy = yin - y;
    const auto xclip = [w](int v) {
        return v < 0 ? 0 : v < w ? v : w - 1;
    };
    const auto yclip = [h](int v) {
        return v < 0 ? 0 : v < h ? v : h - 1;
    };
    const int x0 = xclip(x) * C;
    const int x1 = xclip(x + 1) * C;
    const uchar *row0 = src.row(yclip(y));
    const uchar *row1 = (y + 1 >= 0 && y + 1 < h) ? src.row(y + 1) : nullptr;
    for (int b = 0; b < C; ++b) {
        double v1 = row0[x0 + b] + (row0[x1 + b] - row0[x0 + b]) * dx;
        double v2 = v1;
        if (row1)
            v2 = row1[x0 + b] + (row1[x1 + b] - row1[x0 + b]) * dx;
        v1 = v1 + (v2 - v1) * dy;
        out[b] = uint8_t(v1);
    }
    return true;
}

/// Geometry.c's BICUBIC macro (a = -0.5 convolution) on four samples.
template<typename T>
inline double cubic(T v1, T v2, T v3, T v4, double d)
{
    const double p1 = v2;
    const double p2 = -v1 + v3;
    const double p3 = 2 * (v1 - v2) + v3 - v4;
    const double p4 = -v1 + v2 - v3 + v4;
    return p1 + d * (p2 + d * (p3 + d * p4));
}

/// Geometry.c's bicubic_filter8 / bicubic_filter32RGB for one output pixel (C channels).
template<int C>
inline bool bicubicSample(const Pixels &src, double xin, double yin, uchar *out)
{
    const int w = src.width;
    const int h = src.height;
    if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h)
        return false;
    xin -= 0.5;
    yin -= 0.5;
    int x = pilFloor(xin);
    int y = pilFloor(yin);
    const double dx = xin - x;
    const double dy = yin - y;
    --x;
    --y;
    const auto xclip = [w](int v) {
        return v < 0 ? 0 : v < w ? v : w - 1;
    };
    const auto yclip = [h](int v) {
        return v < 0 ? 0 : v < h ? v : h - 1;
    };
    const int xs[4] = {xclip(x) * C, xclip(x + 1) * C, xclip(x + 2) * C, xclip(x + 3) * C};
    // Rows below the image repeat the value of the row above, as Pillow's macro does.
    const uchar *rows[4] = {src.row(yclip(y)), nullptr, nullptr, nullptr};
    for (int i = 1; i < 4; ++i)
        rows[i] = (y + i >= 0 && y + i < h) ? src.row(y + i) : nullptr;
    const auto horizontal = [&xs, dx](const uchar *in, int b) {
        return cubic<int>(in[xs[0] + b], in[xs[1] + b], in[xs[2] + b], in[xs[3] + b], dx);
    };
    for (int b = 0; b < C; ++b) {
        double v[4];
        v[0] = horizontal(rows[0], b);
        for (int i = 1; i < 4; ++i)
            v[i] = rows[i] ? horizontal(rows[i], b) : v[i - 1];
        const double r = cubic<double>(v[0], v[1], v[2], v[3], dy);
        out[b] = r <= 0.0 ? 0 : r >= 255.0 ? 255 : uint8_t(r);
    }
    return true;
}

/// ImagingGenericTransform with affine_transform and a bilinear or bicubic filter; pixels whose
/// source point falls outside the image keep the background already in `dst`.
template<int C, bool Bicubic>
void genericAffine(const QImage &src, QImage &dst, const std::array<double, 6> &a)
{
    const Pixels in(src);
    const qsizetype dstStride = dst.bytesPerLine();
    uchar *dstBits = dst.bits();
    for (int y = 0; y < dst.height(); ++y) {
        uchar *out = dstBits + y * dstStride;
        const double yin = y + 0.5;
        for (int x = 0; x < dst.width(); ++x, out += C) {
            const double xin = x + 0.5;
            const double xs = a[0] * xin + a[1] * yin + a[2];
            const double ys = a[3] * xin + a[4] * yin + a[5];
            if constexpr (Bicubic)
                bicubicSample<C>(in, xs, ys, out);
            else
                bilinearSample<C>(in, xs, ys, out);
        }
    }
}

void genericAffine(const QImage &src, QImage &dst, const std::array<double, 6> &a, Filter filter)
{
    const bool bicubic = filter == Filter::Bicubic;
    if (isGray(src))
        bicubic ? genericAffine<1, true>(src, dst, a) : genericAffine<1, false>(src, dst, a);
    else
        bicubic ? genericAffine<3, true>(src, dst, a) : genericAffine<3, false>(src, dst, a);
}

// --- Convert.c --------------------------------------------------------------------------------

/// Convert.c's L24: ITU-R 601-2 luma in 16.16 fixed point.
inline uint8_t luma(const uchar *rgb)
{
    return uint8_t((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

/// Convert.c's rgb2hsv_row (float and double mixed exactly as the C code mixes them).
inline void rgbToHsv(const uchar *in, uint8_t &uh, uint8_t &us, uint8_t &uv)
{
    const uint8_t r = in[0];
    const uint8_t g = in[1];
    const uint8_t b = in[2];
    const uint8_t maxc = std::max(r, std::max(g, b));
    const uint8_t minc = std::min(r, std::min(g, b));
    uv = maxc;
    if (minc == maxc) {
        uh = 0;
        us = 0;
        return;
    }
    const float cr = float(maxc - minc);
    const float s = cr / float(maxc);
    const float rc = float(maxc - r) / cr;
    const float gc = float(maxc - g) / cr;
    const float bc = float(maxc - b) / cr;
    float h;
    if (r == maxc)
        h = bc - gc;
    else if (g == maxc)
        h = float(2.0 + rc - bc);
    else
        h = float(4.0 + gc - rc);
    // fmod(x, 1.0) for x in [5/6, 11/6] (the range h / 6 + 1 takes), exactly and without a call.
    const double wrapped = h / 6.0 + 1.0;
    h = float(wrapped >= 1.0 ? wrapped - 1.0 : wrapped);
    uh = clip8(int(h * 255.0));
    us = clip8(int(s * 255.0));
}

/// C's round() for a non-negative double, without a library call.
inline int roundNonNegative(double x)
{
    const double t = double(int(x));
    return int(t) + (x - t >= 0.5 ? 1 : 0);
}

/// What hsv2rgb derives from h and s alone, tabulated once.
struct HsvTables
{
    HsvTables()
    {
        for (int v = 0; v < 256; ++v) {
            sector[v] = int(std::floor(float(v) * 6.0 / 255.0));
            fraction[v] = float(float(v) * 6.0 / 255.0 - float(sector[v]));
            saturation[v] = float(float(v) / 255.0);
        }
    }
    int sector[256];
    float fraction[256];
    float saturation[256];
};

const HsvTables &hsvTables()
{
    static const HsvTables tables;
    return tables;
}

/// Convert.c's hsv2rgb for one pixel.
inline void hsvToRgb(const HsvTables &t, uint8_t h, uint8_t s, uint8_t v, uchar *out)
{
    if (s == 0) {
        out[0] = out[1] = out[2] = v;
        return;
    }
    const int i = t.sector[h];
    const float f = t.fraction[h];
    const float fs = t.saturation[s];
    const uint8_t up = clip8(roundNonNegative(float(v) * (1.0 - fs)));
    const uint8_t uq = clip8(roundNonNegative(float(v) * (1.0 - fs * f)));
    const uint8_t ut = clip8(roundNonNegative(float(v) * (1.0 - fs * (1.0 - f))));
    switch (i % 6) {
    case 0:
        out[0] = v, out[1] = ut, out[2] = up;
        break;
    case 1:
        out[0] = uq, out[1] = v, out[2] = up;
        break;
    case 2:
        out[0] = up, out[1] = v, out[2] = ut;
        break;
    case 3:
        out[0] = up, out[1] = uq, out[2] = v;
        break;
    case 4:
        out[0] = ut, out[1] = up, out[2] = v;
        break;
    case 5:
        out[0] = v, out[1] = up, out[2] = uq;
        break;
    }
}

// --- Blend.c ----------------------------------------------------------------------------------

/// ImagingBlend for one byte; alpha is a C float there, so the arithmetic is in float.
inline uint8_t blendByte(int in1, int in2, float alpha, bool extrapolate)
{
    const float v = float(in1) + alpha * float(in2 - in1);
    if (!extrapolate)
        return uint8_t(v);
    if (v <= 0.0f)
        return 0;
    if (v >= 255.0f)
        return 255;
    return uint8_t(v);
}

/// ImagingBlend over a run of bytes; the two loops keep the branch out of the vectorised body.
void blendRow(const uchar *in1, const uchar *in2, uchar *out, int n, float alpha, bool extrapolate)
{
    if (!extrapolate) {
        for (int i = 0; i < n; ++i)
            out[i] = uchar(int(float(in1[i]) + alpha * float(in2[i] - in1[i])));
        return;
    }
    for (int i = 0; i < n; ++i) {
        const float v = float(in1[i]) + alpha * float(in2[i] - in1[i]);
        out[i] = uchar(v <= 0.0f ? 0 : v >= 255.0f ? 255 : int(v));
    }
}

/// Blends every byte of `image` with a constant `in1` (a flat degenerate image) through a table.
QImage blendWithConstant(const QImage &image, int in1, double alpha)
{
    const float a = float(alpha);
    if (a == 0.0f)
        return newImage(image.size(), image.format(), {in1, in1, in1});
    if (a == 1.0f)
        return image.copy();
    const bool extrapolate = !(a >= 0 && a <= 1.0f);
    uint8_t table[256];
    for (int v = 0; v < 256; ++v)
        table[v] = blendByte(in1, v, a, extrapolate);
    QImage out(image.size(), image.format());
    if (out.isNull())
        return {};
    const int rowBytes = image.width() * channelsOf(image);
    for (int y = 0; y < image.height(); ++y) {
        const uchar *in = image.constScanLine(y);
        uchar *o = out.scanLine(y);
        for (int i = 0; i < rowBytes; ++i)
            o[i] = table[in[i]];
    }
    return out;
}

// --- Gaussian blur ----------------------------------------------------------------------------

/// Sleef's expf_u10 (SLEEF 3.5, the AVX2 build that torch's CPU kernels call for exp), lane by
/// lane: torch's kernel values are these, not glibc's expf.
float sleefExpf(float d)
{
    const auto pow2i = [](int q) {
        return std::bit_cast<float>(uint32_t(q + 0x7f) << 23);
    };
    const int q = int(
        std::nearbyint(d * 1.442695040888963407359924681001892137426645954152985934135449406931f));
    float s = std::fma(float(q), -0.693145751953125f, d);
    s = std::fma(float(q), -1.428606765330187045e-06f, s);
    // The coefficients are double literals narrowed to float in Sleef.
    float u = float(0.000198527617612853646278381);
    u = std::fma(u, s, float(0.00139304355252534151077271));
    u = std::fma(u, s, float(0.00833336077630519866943359));
    u = std::fma(u, s, float(0.0416664853692054748535156));
    u = std::fma(u, s, float(0.166666671633720397949219));
    u = std::fma(u, s, 0.5f);
    u = 1.0f + std::fma(s * s, u, s);
    u = u * pow2i(q >> 1) * pow2i(q - (q >> 1));
    if (d < -104)
        u = 0;
    if (100 < d)
        u = std::numeric_limits<float>::infinity();
    return u;
}

/// torch's float sum of a short contiguous tensor (SumKernel.cpp's cascade_sum with AVX2's 8-lane
/// vectors: four vector accumulators, the scalar tail, then the lanes one by one).
float torchSum(const float *x, int n)
{
    constexpr int kLanes = 8;
    if (n >= kLanes) {
        const int vectors = n / kLanes;
        const int rows = vectors / 4;
        float part[4][kLanes] = {};
        for (int i = 0; i < rows; ++i) {
            for (int k = 0; k < 4; ++k) {
                for (int l = 0; l < kLanes; ++l)
                    part[k][l] += x[(i * 4 + k) * kLanes + l];
            }
        }
        for (int i = rows * 4; i < vectors; ++i) {
            for (int l = 0; l < kLanes; ++l)
                part[0][l] += x[i * kLanes + l];
        }
        for (int k = 1; k < 4; ++k) {
            for (int l = 0; l < kLanes; ++l)
                part[0][l] += part[k][l];
        }
        float sum = 0.0f;
        for (int i = vectors * kLanes; i < n; ++i)
            sum += x[i];
        for (int l = 0; l < kLanes; ++l)
            sum += part[0][l];
        return sum;
    }
    float part[4] = {};
    const int rows = n / 4;
    for (int i = 0; i < rows; ++i) {
        for (int k = 0; k < 4; ++k)
            part[k] += x[i * 4 + k];
    }
    for (int i = rows * 4; i < n; ++i)
        part[0] += x[i];
    for (int k = 1; k < 4; ++k)
        part[0] += part[k];
    return part[0];
}

/// torchvision's _get_gaussian_kernel1d in float32, bit for bit.
std::vector<float> gaussianKernel(int size, double sigma)
{
    std::vector<float> kernel(size);
    const double half = (size - 1) * 0.5;
    const float sigmaF = float(sigma);
    for (int i = 0; i < size; ++i) {
        // torch.linspace(-half, half, size), computed from the nearer end as torch does.
        const float step = size > 1 ? float((2 * half) / (size - 1)) : 0.0f;
        const float x = i < size / 2 ? float(-half) + step * float(i)
                                     : float(half) - step * float(size - 1 - i);
        const float t = x / sigmaF;
        kernel[i] = sleefExpf(-0.5f * (t * t));
    }
    const float sum = torchSum(kernel.data(), size);
    for (float &k : kernel)
        k /= sum;
    return kernel;
}

/// One Gaussian blur: float rows of the reflect-padded image and the 2-D kernel.
struct BlurJob
{
    const float *padded = nullptr; ///< padded rows, `stride` floats apart, interleaved channels
    qsizetype stride = 0;
    const int *rowOf = nullptr; ///< padded row index -> row of `padded` (reflection in y)
    const float *kernel = nullptr; ///< ky rows of kx values
    int kx = 0;
    int ky = 0;
    int channels = 0;
    int rowFloats = 0; ///< output values per row
    int height = 0;
    uchar *out = nullptr;
    qsizetype outStride = 0;
};

constexpr int kBlurRun = 64;

/// torch's depthwise conv2d for each output value: acc = fma(k, x, acc) over kernel rows, then
/// columns, from 0 (oneDNN's order; the test checks it), rounded half to even as torch.round.
[[gnu::always_inline]] inline void blurBody(const BlurJob &job)
{
    for (int y = 0; y < job.height; ++y) {
        uchar *out = job.out + y * job.outStride;
        for (int i0 = 0; i0 < job.rowFloats; i0 += kBlurRun) {
            // Rows carry kBlurRun spare floats, so a short last run reads harmless values.
            float acc[kBlurRun] = {};
            for (int ki = 0; ki < job.ky; ++ki) {
                const float *row = job.padded + job.rowOf[y + ki] * job.stride + i0;
                const float *k = job.kernel + ki * job.kx;
                for (int kj = 0; kj < job.kx; ++kj) {
                    const float kv = k[kj];
                    const float *p = row + kj * job.channels;
                    for (int i = 0; i < kBlurRun; ++i)
                        acc[i] = std::fma(kv, p[i], acc[i]);
                }
            }
            const int n = std::min(kBlurRun, job.rowFloats - i0);
            for (int i = 0; i < n; ++i)
                out[i0 + i] = uchar(std::clamp(std::nearbyint(acc[i]), 0.0f, 255.0f));
        }
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
// Without FMA instructions std::fma is a library call: take the FMA build where the CPU has it.
__attribute__((target("avx2,fma"))) void blurWithFma(const BlurJob &job)
{
    blurBody(job);
}

bool cpuHasFma()
{
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return has;
}
#endif

void runBlur(const BlurJob &job)
{
#if defined(__GNUC__) && defined(__x86_64__)
    if (cpuHasFma())
        return blurWithFma(job);
#endif
    blurBody(job);
}

/// torch's "reflect" padding index (the edge is not repeated).
int reflectIndex(int i, int n)
{
    if (n == 1)
        return 0;
    const int period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

} // namespace

// --- Public API -------------------------------------------------------------------------------

QImage resize(const QImage &image, QSize size, Filter filter, const QRectF &box)
{
    const QImage src = normalized(image);
    if (src.isNull() || size.width() < 1 || size.height() < 1)
        return {};
    // PIL keeps the box in C floats. It refuses a box outside the image; here it is clamped.
    float b[4] = {0.0f, 0.0f, float(src.width()), float(src.height())};
    if (!box.isNull()) {
        b[0] = std::clamp(float(box.left()), 0.0f, b[2]);
        b[1] = std::clamp(float(box.top()), 0.0f, b[3]);
        b[2] = std::clamp(float(box.right()), b[0], b[2]);
        b[3] = std::clamp(float(box.bottom()), b[1], b[3]);
    }
    const bool wholeBox
        = b[0] == 0.0f && b[1] == 0.0f && b[2] == float(src.width()) && b[3] == float(src.height());
    if (size == src.size() && wholeBox)
        return src.copy();

    // _imaging.c's resize: an integer box of the output size is a plain crop.
    if (b[0] - float(int(b[0])) == 0.0f && b[2] - b[0] == float(size.width())
        && b[1] - float(int(b[1])) == 0.0f && b[3] - b[1] == float(size.height()))
        return src.copy(int(b[0]), int(b[1]), size.width(), size.height());

    if (filter == Filter::Nearest) {
        const std::array<double, 6> a = {double(b[2] - b[0]) / size.width(),  0.0, b[0], 0.0,
                                         double(b[3] - b[1]) / size.height(), b[1]};
        QImage out = newImage(size, src.format());
        if (out.isNull())
            return {};
        scaleAffine(src, out, a);
        return out;
    }
    return resampleImage(src, size, filter, b);
}

QImage crop(const QImage &image, const QRect &rect)
{
    const QImage src = normalized(image);
    if (src.isNull() || rect.width() < 1 || rect.height() < 1)
        return {};
    QImage out = newImage(rect.size(), src.format());
    if (out.isNull())
        return {};
    const QRect inside = rect.intersected(src.rect());
    if (inside.isEmpty())
        return out;
    const int channels = channelsOf(src);
    const size_t bytes = size_t(inside.width()) * channels;
    for (int y = inside.top(); y <= inside.bottom(); ++y) {
        std::memcpy(out.scanLine(y - rect.top()) + (inside.left() - rect.left()) * channels,
                    src.constScanLine(y) + inside.left() * channels, bytes);
    }
    return out;
}

QImage flipLeftRight(const QImage &image)
{
    return transpose(image, Transpose::FlipLeftRight);
}

QImage flipTopBottom(const QImage &image)
{
    return transpose(image, Transpose::FlipTopBottom);
}

QImage transpose(const QImage &image, Transpose op)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    const int w = src.width();
    const int h = src.height();
    const int channels = channelsOf(src);
    const bool swaps = op == Transpose::Rotate90 || op == Transpose::Rotate270
        || op == Transpose::Transpose || op == Transpose::Transverse;
    QImage out(swaps ? QSize(h, w) : QSize(w, h), src.format());
    if (out.isNull())
        return {};
    const qsizetype outStride = out.bytesPerLine();
    uchar *outBits = out.bits();
    const size_t rowBytes = size_t(w) * channels;

    if (op == Transpose::FlipTopBottom) {
        for (int y = 0; y < h; ++y)
            std::memcpy(outBits + (h - 1 - y) * outStride, src.constScanLine(y), rowBytes);
        return out;
    }
    if (op == Transpose::FlipLeftRight || op == Transpose::Rotate180) {
        for (int y = 0; y < h; ++y) {
            const uchar *in = src.constScanLine(y);
            const int yo = op == Transpose::Rotate180 ? h - 1 - y : y;
            uchar *o = outBits + yo * outStride;
            for (int x = 0; x < w; ++x)
                copyPixel(o + (w - 1 - x) * channels, in + x * channels, channels);
        }
        return out;
    }
    // The rest move input row y to output column c(y), input column x to output row r(x).
    for (int y = 0; y < h; ++y) {
        const uchar *in = src.constScanLine(y);
        int column = y;
        if (op == Transpose::Rotate270 || op == Transpose::Transverse)
            column = h - 1 - y;
        uchar *o = outBits + column * channels;
        for (int x = 0; x < w; ++x) {
            int row = x;
            if (op == Transpose::Rotate90 || op == Transpose::Transverse)
                row = w - 1 - x;
            copyPixel(o + row * outStride, in + x * channels, channels);
        }
    }
    return out;
}

QImage applyExifOrientation(const QImage &image, int orientation)
{
    switch (orientation) {
    case 2:
        return transpose(image, Transpose::FlipLeftRight);
    case 3:
        return transpose(image, Transpose::Rotate180);
    case 4:
        return transpose(image, Transpose::FlipTopBottom);
    case 5:
        return transpose(image, Transpose::Transpose);
    case 6:
        return transpose(image, Transpose::Rotate270);
    case 7:
        return transpose(image, Transpose::Transverse);
    case 8:
        return transpose(image, Transpose::Rotate90);
    default:
        return image;
    }
}

namespace {

/// numpy.pad's source index for mode edge/reflect/symmetric along an axis of n > 0 samples.
int padIndex(int i, int n, PadMode mode)
{
    if (i >= 0 && i < n)
        return i;
    // numpy extends a single sample like "edge" whatever the mode.
    if (mode == PadMode::Edge || n == 1)
        return std::clamp(i, 0, n - 1);
    if (mode == PadMode::Reflect)
        return reflectIndex(i, n);
    const int period = 2 * n;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - 1 - i;
}

} // namespace

QImage pad(const QImage &image, int left, int top, int right, int bottom, PadMode mode,
           const Fill &fill)
{
    QImage src = normalized(image);
    if (src.isNull())
        return {};
    const int channels = channelsOf(src);
    if (mode == PadMode::Constant) {
        // ImageOps.expand: a new image of the fill colour with the input pasted at (left, top);
        // negative borders crop.
        const QSize size(src.width() + left + right, src.height() + top + bottom);
        if (size.width() < 1 || size.height() < 1)
            return {};
        QImage out = newImage(size, src.format(), channels == 1 ? Fill{fill[0], 0, 0} : fill);
        if (out.isNull())
            return {};
        const QRect target = QRect(QPoint(left, top), src.size()).intersected(out.rect());
        for (int y = target.top(); y <= target.bottom(); ++y) {
            std::memcpy(out.scanLine(y) + target.left() * channels,
                        src.constScanLine(y - top) + (target.left() - left) * channels,
                        size_t(target.width()) * channels);
        }
        return out;
    }
    // torchvision crops negative paddings first, then hands the rest to numpy.pad.
    const int cropLeft = std::max(-left, 0);
    const int cropTop = std::max(-top, 0);
    const int cropRight = std::max(-right, 0);
    const int cropBottom = std::max(-bottom, 0);
    if (cropLeft || cropTop || cropRight || cropBottom) {
        const QRect keep(cropLeft, cropTop, src.width() - cropLeft - cropRight,
                         src.height() - cropTop - cropBottom);
        if (keep.width() < 1 || keep.height() < 1)
            return {};
        src = crop(src, keep);
    }
    left = std::max(left, 0);
    top = std::max(top, 0);
    right = std::max(right, 0);
    bottom = std::max(bottom, 0);
    const int w = src.width();
    const int h = src.height();
    QImage out(w + left + right, h + top + bottom, src.format());
    if (out.isNull())
        return {};
    std::vector<int> columns(out.width());
    for (int x = 0; x < out.width(); ++x)
        columns[x] = padIndex(x - left, w, mode) * channels;
    for (int y = 0; y < out.height(); ++y) {
        const uchar *in = src.constScanLine(padIndex(y - top, h, mode));
        uchar *o = out.scanLine(y);
        for (int x = 0; x < out.width(); ++x)
            copyPixel(o + x * channels, in + columns[x], channels);
    }
    return out;
}

QImage transformAffine(const QImage &image, QSize size, const std::array<double, 6> &matrix,
                       Filter filter, const Fill &fill)
{
    const QImage src = normalized(image);
    if (src.isNull() || size.width() < 1 || size.height() < 1)
        return {};
    // Image.transform accepts these three filters only (ValueError otherwise).
    if (filter != Filter::Nearest && filter != Filter::Bilinear && filter != Filter::Bicubic)
        return {};
    // fillcolor is always given here, so Pillow leaves unmapped pixels at the background colour
    // of Image.new(mode, size, fillcolor).
    QImage out = newImage(size, src.format(), isGray(src) ? Fill{fill[0], 0, 0} : fill);
    if (out.isNull())
        return {};
    if (filter != Filter::Nearest) {
        genericAffine(src, out, matrix, filter);
        return out;
    }
    if (matrix[1] == 0 && matrix[3] == 0) {
        scaleAffine(src, out, matrix);
        return out;
    }
    const int w = size.width();
    const int h = size.height();
    if (checkFixed(matrix, 0, 0) && checkFixed(matrix, w, h) && checkFixed(matrix, 0, h)
        && checkFixed(matrix, w, 0))
        affineFixed(src, out, matrix);
    else
        affineFloat(src, out, matrix);
    return out;
}

QImage rotate(const QImage &image, double angle, Filter filter, bool expand,
              std::optional<QPointF> center, const Fill &fill)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    angle = pyMod(angle, 360.0);
    // Image.rotate's fast paths, taken whatever the filter when no centre is given.
    if (!center) {
        if (angle == 0)
            return src.copy();
        if (angle == 180)
            return transpose(src, Transpose::Rotate180);
        if ((angle == 90 || angle == 270) && (expand || src.width() == src.height()))
            return transpose(src, angle == 90 ? Transpose::Rotate90 : Transpose::Rotate270);
    }
    int w = src.width();
    int h = src.height();
    const double cx = center ? center->x() : w / 2.0;
    const double cy = center ? center->y() : h / 2.0;
    // math.radians multiplies by pi / 180.
    const double radians = -(angle * (std::numbers::pi / 180.0));
    std::array<double, 6> m = {pyRound15(std::cos(radians)),  pyRound15(std::sin(radians)), 0.0,
                               pyRound15(-std::sin(radians)), pyRound15(std::cos(radians)), 0.0};
    const auto apply = [&m](double x, double y) {
        return std::pair{m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]};
    };
    std::tie(m[2], m[5]) = apply(-cx, -cy);
    m[2] += cx;
    m[5] += cy;
    if (expand) {
        double minX = HUGE_VAL, maxX = -HUGE_VAL, minY = HUGE_VAL, maxY = -HUGE_VAL;
        const std::array<std::pair<int, int>, 4> corners = {{{0, 0}, {w, 0}, {w, h}, {0, h}}};
        for (const auto &[x, y] : corners) {
            const auto [tx, ty] = apply(x, y);
            minX = std::min(minX, tx);
            maxX = std::max(maxX, tx);
            minY = std::min(minY, ty);
            maxY = std::max(maxY, ty);
        }
        const int nw = int(std::ceil(maxX) - std::floor(minX));
        const int nh = int(std::ceil(maxY) - std::floor(minY));
        std::tie(m[2], m[5]) = apply(-(nw - w) / 2.0, -(nh - h) / 2.0);
        w = nw;
        h = nh;
    }
    return transformAffine(src, QSize(w, h), m, filter, fill);
}

QImage toGray(const QImage &image)
{
    const QImage src = normalized(image);
    if (src.isNull() || isGray(src))
        return src;
    QImage out(src.size(), QImage::Format_Grayscale8);
    if (out.isNull())
        return {};
    for (int y = 0; y < src.height(); ++y) {
        const uchar *in = src.constScanLine(y);
        uchar *o = out.scanLine(y);
        for (int x = 0; x < src.width(); ++x, in += 3)
            o[x] = luma(in);
    }
    return out;
}

QImage toRgb(const QImage &image)
{
    const QImage src = normalized(image);
    if (src.isNull() || !isGray(src))
        return src;
    QImage out(src.size(), QImage::Format_RGB888);
    if (out.isNull())
        return {};
    for (int y = 0; y < src.height(); ++y) {
        const uchar *in = src.constScanLine(y);
        uchar *o = out.scanLine(y);
        for (int x = 0; x < src.width(); ++x, o += 3)
            o[0] = o[1] = o[2] = in[x];
    }
    return out;
}

QImage blend(const QImage &a, const QImage &b, double alpha)
{
    const QImage in1 = normalized(a);
    const QImage in2 = normalized(b);
    if (in1.isNull() || in1.size() != in2.size() || in1.format() != in2.format())
        return {};
    const float af = float(alpha);
    if (af == 0.0f)
        return in1.copy();
    if (af == 1.0f)
        return in2.copy();
    const bool extrapolate = !(af >= 0 && af <= 1.0f);
    QImage out(in1.size(), in1.format());
    if (out.isNull())
        return {};
    const int rowBytes = in1.width() * channelsOf(in1);
    for (int y = 0; y < in1.height(); ++y)
        blendRow(in1.constScanLine(y), in2.constScanLine(y), out.scanLine(y), rowBytes, af,
                 extrapolate);
    return out;
}

QImage adjustBrightness(const QImage &image, double factor)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    // ImageEnhance.Brightness blends with a black image.
    return blendWithConstant(src, 0, factor);
}

QImage adjustContrast(const QImage &image, double factor)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    // ImageEnhance.Contrast blends with a flat image of the rounded mean luma (ImageStat's
    // histogram mean, in double as Python computes it).
    int64_t histogram[256] = {};
    const bool gray = isGray(src);
    for (int y = 0; y < src.height(); ++y) {
        const uchar *in = src.constScanLine(y);
        if (gray) {
            for (int x = 0; x < src.width(); ++x)
                ++histogram[in[x]];
        } else {
            for (int x = 0; x < src.width(); ++x, in += 3)
                ++histogram[luma(in)];
        }
    }
    double sum = 0.0;
    int64_t count = 0;
    for (int j = 0; j < 256; ++j) {
        sum += double(j * histogram[j]);
        count += histogram[j];
    }
    const int mean = count ? int(sum / double(count) + 0.5) : 0;
    return blendWithConstant(src, mean, factor);
}

QImage adjustSaturation(const QImage &image, double factor)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    // ImageEnhance.Color blends with convert("L").convert(mode): for a gray image that is the
    // image itself, and the blend gives it back unchanged.
    if (isGray(src))
        return src.copy();
    const float af = float(factor);
    if (af == 1.0f)
        return src.copy();
    if (af == 0.0f)
        return toRgb(toGray(src));
    const bool extrapolate = !(af >= 0 && af <= 1.0f);
    QImage out(src.size(), src.format());
    if (out.isNull())
        return {};
    // The degenerate image, convert("L").convert("RGB"), one row at a time.
    std::vector<uchar> gray(size_t(src.width()) * 3);
    for (int y = 0; y < src.height(); ++y) {
        const uchar *in = src.constScanLine(y);
        for (int x = 0; x < src.width(); ++x)
            gray[x * 3] = gray[x * 3 + 1] = gray[x * 3 + 2] = luma(in + x * 3);
        blendRow(gray.data(), in, out.scanLine(y), src.width() * 3, af, extrapolate);
    }
    return out;
}

QImage adjustHue(const QImage &image, double hueFactor)
{
    const QImage src = normalized(image);
    if (src.isNull() || isGray(src))
        return src;
    // np.uint8(hue_factor * 255): truncation toward zero, then modulo 256.
    const auto shift = uint8_t(truncToInt(hueFactor * 255));
    const HsvTables &tables = hsvTables();
    QImage out(src.size(), src.format());
    if (out.isNull())
        return {};
    for (int y = 0; y < src.height(); ++y) {
        const uchar *in = src.constScanLine(y);
        uchar *o = out.scanLine(y);
        for (int x = 0; x < src.width(); ++x, in += 3, o += 3) {
            uint8_t h, s, v;
            rgbToHsv(in, h, s, v);
            hsvToRgb(tables, uint8_t(h + shift), s, v, o);
        }
    }
    return out;
}

QImage gaussianBlur(const QImage &image, int kx, int ky, double sx, double sy)
{
    const QImage src = normalized(image);
    if (src.isNull() || kx < 1 || ky < 1)
        return {};
    const std::vector<float> kernelX = gaussianKernel(kx, sx);
    const std::vector<float> kernelY = gaussianKernel(ky, sy);
    // torch.mm(kernel_y[:, None], kernel_x[None, :]): each value one rounded float product.
    std::vector<float> kernel(size_t(kx) * ky);
    for (int i = 0; i < ky; ++i) {
        for (int j = 0; j < kx; ++j)
            kernel[size_t(i) * kx + j] = kernelY[i] * kernelX[j];
    }
    const int w = src.width();
    const int h = src.height();
    const int channels = channelsOf(src);
    const int padX = kx / 2;
    const int padY = ky / 2;

    // The image as float rows, reflect-padded in x; reflection in y goes through rowOf.
    const qsizetype stride = qsizetype(w + 2 * padX) * channels + kBlurRun;
    std::vector<float> padded(size_t(stride) * h, 0.0f);
    std::vector<int> column(w + 2 * padX);
    for (int i = 0; i < w + 2 * padX; ++i)
        column[i] = reflectIndex(i - padX, w) * channels;
    for (int y = 0; y < h; ++y) {
        const uchar *in = src.constScanLine(y);
        float *row = &padded[size_t(y) * stride];
        for (int i = 0; i < w + 2 * padX; ++i) {
            for (int c = 0; c < channels; ++c)
                row[i * channels + c] = in[column[i] + c];
        }
    }
    std::vector<int> rowOf(h + 2 * padY);
    for (int i = 0; i < h + 2 * padY; ++i)
        rowOf[i] = reflectIndex(i - padY, h);

    QImage out(src.size(), src.format());
    if (out.isNull())
        return {};
    BlurJob job;
    job.padded = padded.data();
    job.stride = stride;
    job.rowOf = rowOf.data();
    job.kernel = kernel.data();
    job.kx = kx;
    job.ky = ky;
    job.channels = channels;
    job.rowFloats = w * channels;
    job.height = h;
    job.out = out.bits();
    job.outStride = out.bytesPerLine();
    runBlur(job);
    return out;
}

// --- Perspective, ImageOps, ImageEnhance.Sharpness -----------------------------------------------

namespace {

/// ImagingGenericTransform with perspective_transform; unmapped pixels keep the background.
template<int C>
void genericPerspective(const QImage &src, QImage &dst, const std::array<double, 8> &a,
                        Filter filter)
{
    const Pixels in(src);
    const qsizetype dstStride = dst.bytesPerLine();
    uchar *dstBits = dst.bits();
    for (int y = 0; y < dst.height(); ++y) {
        uchar *out = dstBits + y * dstStride;
        const double yin = y + 0.5;
        for (int x = 0; x < dst.width(); ++x, out += C) {
            const double xin = x + 0.5;
            const double xs = (a[0] * xin + a[1] * yin + a[2]) / (a[6] * xin + a[7] * yin + 1);
            const double ys = (a[3] * xin + a[4] * yin + a[5]) / (a[6] * xin + a[7] * yin + 1);
            if (filter == Filter::Bicubic) {
                bicubicSample<C>(in, xs, ys, out);
            } else if (filter == Filter::Bilinear) {
                bilinearSample<C>(in, xs, ys, out);
            } else {
                const int sx = pilCoord(xs), sy = pilCoord(ys);
                if (sx >= 0 && sx < in.width && sy >= 0 && sy < in.height)
                    copyPixel(out, in.row(sy) + sx * C, C);
            }
        }
    }
}

/// Image.point(lut) with one 256-entry table per channel (values clipped to 0..255).
QImage applyLuts(const QImage &image, const std::vector<std::array<int, 256>> &luts)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    QImage out(src.size(), src.format());
    if (out.isNull())
        return {};
    const int channels = channelsOf(src);
    uint8_t table[3][256];
    for (int c = 0; c < channels; ++c)
        for (int v = 0; v < 256; ++v)
            table[c][v] = clip8(luts[luts.size() == 1 ? 0 : size_t(c)][size_t(v)]);
    for (int y = 0; y < src.height(); ++y) {
        const uchar *in = src.constScanLine(y);
        uchar *o = out.scanLine(y);
        for (int x = 0; x < src.width() * channels; ++x)
            o[x] = table[x % channels][in[x]];
    }
    return out;
}

/// Image.histogram(): 256 counts per channel.
std::vector<std::array<qint64, 256>> histograms(const QImage &src)
{
    const int channels = channelsOf(src);
    std::vector<std::array<qint64, 256>> h(static_cast<size_t>(channels));
    for (auto &counts : h)
        counts.fill(0);
    for (int y = 0; y < src.height(); ++y) {
        const uchar *in = src.constScanLine(y);
        for (int x = 0; x < src.width(); ++x)
            for (int c = 0; c < channels; ++c)
                ++h[size_t(c)][in[x * channels + c]];
    }
    return h;
}

/// Filter.c's ImagingFilter3x3 with ImageFilter.SMOOTH ((1 1 1, 1 5 1, 1 1 1) / 13, float).
QImage smooth(const QImage &src)
{
    if (src.width() < 3 || src.height() < 3)
        return src.copy();
    QImage out = src.copy();
    if (out.isNull())
        return {};
    const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
    const float kernel[9] = {k1, k1, k1, k1, k5, k1, k1, k1, k1};
    const int c = channelsOf(src);
    const auto row3 = [c](const uchar *in, int x, const float *k) {
        return float(in[x - c]) * k[0] + float(in[x]) * k[1] + float(in[x + c]) * k[2];
    };
    for (int y = 1; y < src.height() - 1; ++y) {
        const uchar *above = src.constScanLine(y - 1);
        const uchar *in0 = src.constScanLine(y);
        const uchar *below = src.constScanLine(y + 1);
        uchar *o = out.scanLine(y);
        for (int x = c; x < (src.width() - 1) * c; ++x) {
            float ss = 0.5f;
            ss += row3(below, x, &kernel[0]);
            ss += row3(in0, x, &kernel[3]);
            ss += row3(above, x, &kernel[6]);
            o[x] = ss <= 0.0f ? 0 : ss >= 255.0f ? 255 : uint8_t(ss);
        }
    }
    return out;
}

} // namespace

QImage transformPerspective(const QImage &image, QSize size, const std::array<double, 8> &coeffs,
                            Filter filter, const Fill &fill)
{
    const QImage src = normalized(image);
    if (src.isNull() || size.width() < 1 || size.height() < 1)
        return {};
    if (filter != Filter::Nearest && filter != Filter::Bilinear && filter != Filter::Bicubic)
        return {};
    QImage out = newImage(size, src.format(), isGray(src) ? Fill{fill[0], 0, 0} : fill);
    if (out.isNull())
        return {};
    if (isGray(src))
        genericPerspective<1>(src, out, coeffs, filter);
    else
        genericPerspective<3>(src, out, coeffs, filter);
    return out;
}

QImage invert(const QImage &image)
{
    std::array<int, 256> lut;
    for (int v = 0; v < 256; ++v)
        lut[size_t(v)] = 255 - v;
    return applyLuts(image, {lut});
}

QImage posterize(const QImage &image, int bits)
{
    const int mask = ~((1 << (8 - std::clamp(bits, 0, 8))) - 1);
    std::array<int, 256> lut;
    for (int v = 0; v < 256; ++v)
        lut[size_t(v)] = v & mask;
    return applyLuts(image, {lut});
}

QImage solarize(const QImage &image, double threshold)
{
    std::array<int, 256> lut;
    for (int v = 0; v < 256; ++v)
        lut[size_t(v)] = v < threshold ? v : 255 - v;
    return applyLuts(image, {lut});
}

QImage autocontrast(const QImage &image)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    std::vector<std::array<int, 256>> luts;
    for (const std::array<qint64, 256> &h : histograms(src)) {
        int lo = 0, hi = 255;
        while (lo < 255 && !h[size_t(lo)])
            ++lo;
        while (hi > 0 && !h[size_t(hi)])
            --hi;
        std::array<int, 256> lut;
        if (hi <= lo) {
            for (int v = 0; v < 256; ++v)
                lut[size_t(v)] = v;
        } else {
            const double scale = 255.0 / (hi - lo);
            const double offset = -lo * scale;
            for (int v = 0; v < 256; ++v)
                lut[size_t(v)] = std::clamp(truncToInt(v * scale + offset), 0, 255);
        }
        luts.push_back(lut);
    }
    return applyLuts(src, luts);
}

QImage equalize(const QImage &image)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    std::vector<std::array<int, 256>> luts;
    for (const std::array<qint64, 256> &h : histograms(src)) {
        qint64 total = 0, last = 0;
        int nonZero = 0;
        for (const qint64 count : h)
            if (count) {
                total += count;
                last = count;
                ++nonZero;
            }
        std::array<int, 256> lut;
        const qint64 step = nonZero <= 1 ? 0 : (total - last) / 255;
        if (!step) {
            for (int v = 0; v < 256; ++v)
                lut[size_t(v)] = v;
        } else {
            qint64 n = step / 2;
            for (int v = 0; v < 256; ++v) {
                lut[size_t(v)] = int(std::min<qint64>(n / step, 255));
                n += h[size_t(v)];
            }
        }
        luts.push_back(lut);
    }
    return applyLuts(src, luts);
}

QImage adjustSharpness(const QImage &image, double factor)
{
    const QImage src = normalized(image);
    if (src.isNull())
        return {};
    const QImage degenerate = smooth(src);
    if (degenerate.isNull())
        return {};
    return blend(degenerate, src, factor);
}

} // namespace ifs::pil
