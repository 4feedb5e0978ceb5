#include "transforms/ops/augmentops.h"

#include "transforms/torchrng.h"

#include <cmath>

namespace ifs::ops::augment {

QString opName(Op op)
{
    switch (op) {
    case Op::Identity:
        return QStringLiteral("Identity");
    case Op::ShearX:
        return QStringLiteral("ShearX");
    case Op::ShearY:
        return QStringLiteral("ShearY");
    case Op::TranslateX:
        return QStringLiteral("TranslateX");
    case Op::TranslateY:
        return QStringLiteral("TranslateY");
    case Op::Rotate:
        return QStringLiteral("Rotate");
    case Op::Brightness:
        return QStringLiteral("Brightness");
    case Op::Color:
        return QStringLiteral("Color");
    case Op::Contrast:
        return QStringLiteral("Contrast");
    case Op::Sharpness:
        return QStringLiteral("Sharpness");
    case Op::Posterize:
        return QStringLiteral("Posterize");
    case Op::Solarize:
        return QStringLiteral("Solarize");
    case Op::AutoContrast:
        return QStringLiteral("AutoContrast");
    case Op::Equalize:
        return QStringLiteral("Equalize");
    case Op::Invert:
        return QStringLiteral("Invert");
    }
    return {};
}

std::vector<double> linspace(double start, double end, int steps)
{
    // RangeFactoriesKernel.cpp's linspace_kernel for float: step in float, elements before the
    // halfway point from the start, the rest from the end; cpu_serial_kernel_vec takes the first
    // multiples of 16 elements in two vectors of 8 (Vectorized::arange: base + k * step).
    const bool fma = TorchGenerator::detectedCpuCapability() == TorchCpuCapability::Avx2;
    const float s = float(start), e = float(end);
    const float step = steps > 1 ? (e - s) / float(steps - 1) : 0.0f;
    const int halfway = steps / 2;
    const auto scalar = [&](int idx) -> float {
        if (idx < halfway)
            return fma ? std::fma(step, float(idx), s) : s + step * float(idx);
        const float k = float(steps - idx - 1);
        return fma ? std::fma(-step, k, e) : e - step * k;
    };
    std::vector<double> out;
    int i = 0;
    for (; i + 16 <= steps; i += 16)
        for (const int block : {i, i + 8}) {
            const float base = scalar(block);
            for (int k = 0; k < 8; ++k) {
                const float product = float(k) * step;
                out.push_back(double(base + product));
            }
        }
    for (; i < steps; ++i)
        out.push_back(double(scalar(i)));
    return out;
}

std::vector<double> posterizeBins(int top, int steps, double divisor)
{
    // arange (int64) / python float: float32 division, round half to even, .int().
    const float d = float(double(steps - 1) / divisor);
    std::vector<double> out;
    for (int k = 0; k < steps; ++k)
        out.push_back(double(top - int(std::nearbyint(float(k) / d))));
    return out;
}

namespace {

void affine(RunState &run, QPointF center, int tx, int ty, double shearX, double shearY,
            pil::Filter filter, const std::vector<double> &fill)
{
    run.data.image = pil::transformAffine(
        run.data.image, run.size(), inverseAffineMatrix(center, 0.0, tx, ty, 1.0, shearX, shearY),
        filter, pilFill(fill, channelsOf(run.data.image)));
    run.coords.valid = false;
}

} // namespace

QString applyOp(RunState &run, Op op, double magnitude, pil::Filter filter,
                const std::vector<double> &fill)
{
    QImage &image = run.data.image;
    const QSize size = run.size();
    const QPointF middle(size.width() * 0.5, size.height() * 0.5);
    constexpr double kToDegrees = 180.0 / M_PI; // math.degrees
    switch (op) {
    case Op::Identity:
        return QStringLiteral("Identity");
    case Op::ShearX:
        affine(run, {0, 0}, 0, 0, std::atan(magnitude) * kToDegrees, 0.0, filter, fill);
        return QStringLiteral("ShearX(%1)").arg(fmt(magnitude));
    case Op::ShearY:
        affine(run, {0, 0}, 0, 0, 0.0, std::atan(magnitude) * kToDegrees, filter, fill);
        return QStringLiteral("ShearY(%1)").arg(fmt(magnitude));
    case Op::TranslateX:
        affine(run, middle, int(magnitude), 0, 0.0, 0.0, filter, fill);
        return QStringLiteral("TranslateX(%1 px)").arg(int(magnitude));
    case Op::TranslateY:
        affine(run, middle, 0, int(magnitude), 0.0, 0.0, filter, fill);
        return QStringLiteral("TranslateY(%1 px)").arg(int(magnitude));
    case Op::Rotate:
        image = pil::rotate(image, magnitude, filter, false, std::nullopt,
                            pilFill(fill, channelsOf(image)));
        run.coords.valid = false;
        return QStringLiteral("Rotate(%1°)").arg(fmt(magnitude));
    case Op::Brightness:
        image = pil::adjustBrightness(image, 1.0 + magnitude);
        return QStringLiteral("Brightness(%1)").arg(fmt(1.0 + magnitude));
    case Op::Color:
        image = pil::adjustSaturation(image, 1.0 + magnitude);
        return QStringLiteral("Color(%1)").arg(fmt(1.0 + magnitude));
    case Op::Contrast:
        image = pil::adjustContrast(image, 1.0 + magnitude);
        return QStringLiteral("Contrast(%1)").arg(fmt(1.0 + magnitude));
    case Op::Sharpness:
        image = pil::adjustSharpness(image, 1.0 + magnitude);
        return QStringLiteral("Sharpness(%1)").arg(fmt(1.0 + magnitude));
    case Op::Posterize:
        image = pil::posterize(image, int(magnitude));
        return QStringLiteral("Posterize(bits=%1)").arg(int(magnitude));
    case Op::Solarize:
        image = pil::solarize(image, magnitude);
        return QStringLiteral("Solarize(threshold=%1)").arg(fmt(magnitude));
    case Op::AutoContrast:
        image = pil::autocontrast(image);
        return QStringLiteral("AutoContrast");
    case Op::Equalize:
        image = pil::equalize(image);
        return QStringLiteral("Equalize");
    case Op::Invert:
        image = pil::invert(image);
        return QStringLiteral("Invert");
    }
    return {};
}

pil::Filter policyInterpolation(const V &v)
{
    const pil::Filter filter = interpolation(v);
    if (filter != pil::Filter::Nearest && filter != pil::Filter::Bilinear
        && filter != pil::Filter::Bicubic)
        fail(QStringLiteral("the policies' affine and rotate ops support NEAREST, BILINEAR and "
                            "BICUBIC only"));
    return filter;
}

std::vector<double> policyFill(const V &v)
{
    return fillValues(v);
}

} // namespace ifs::ops::augment
