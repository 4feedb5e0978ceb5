// Grad-CAM's overlay and PNG output: torch-free (ifs_core). The heatmap itself is computed in
// src/torch/gradcam.cpp.

#include "training/gradcam.h"

#include "base/atomicfile.h"

#include <QBuffer>

#include <algorithm>
#include <cmath>

namespace ifs {

namespace {

/// The heatmap's value at pixel (x, y) of a `target`-sized image: bilinear with pixel centres
/// at +0.5 (align_corners=False), clamped at the edges.
float sampleBilinear(const std::vector<float> &heatmap, QSize size, QSize target, int x, int y)
{
    auto axis = [](int i, int from, int to, int &i0, int &i1, float &f) {
        const float src = std::max(0.f, (float(i) + 0.5f) * float(from) / float(to) - 0.5f);
        i0 = std::min(int(src), from - 1);
        i1 = std::min(i0 + 1, from - 1);
        f = src - float(i0);
    };
    int x0, x1, y0, y1;
    float fx, fy;
    axis(x, size.width(), target.width(), x0, x1, fx);
    axis(y, size.height(), target.height(), y0, y1, fy);
    const qsizetype w = size.width();
    auto at = [&](int xx, int yy) {
        return heatmap[size_t(yy * w + xx)];
    };
    const float top = at(x0, y0) * (1.f - fx) + at(x1, y0) * fx;
    const float bottom = at(x0, y1) * (1.f - fx) + at(x1, y1) * fx;
    return top * (1.f - fy) + bottom * fy;
}

} // namespace

QRgb gradCamColor(float t)
{
    const float v = std::clamp(t, 0.f, 1.f);
    auto channel = [v](float centre) {
        return int(std::lround(255.f * std::clamp(1.5f - std::abs(4.f * v - centre), 0.f, 1.f)));
    };
    return qRgb(channel(3.f), channel(2.f), channel(1.f));
}

QImage gradCamOverlay(const QImage &image, const std::vector<float> &heatmap, QSize heatmapSize,
                      double opacity)
{
    const bool usable = heatmapSize.isValid() && !heatmapSize.isEmpty()
        && heatmap.size() == size_t(heatmapSize.width()) * size_t(heatmapSize.height());
    const QSize size = image.isNull() ? heatmapSize : image.size();
    if (!usable || size.isEmpty())
        return {};
    QImage out = image.isNull() ? QImage(size, QImage::Format_RGB32)
                                : image.convertToFormat(QImage::Format_RGB32);
    if (image.isNull())
        out.fill(Qt::black);
    const double a = std::clamp(opacity, 0.0, 1.0);
    const bool same = size == heatmapSize;
    for (int y = 0; y < size.height(); ++y) {
        auto *row = reinterpret_cast<QRgb *>(out.scanLine(y));
        for (int x = 0; x < size.width(); ++x) {
            const float value = same ? heatmap[size_t(y) * size_t(size.width()) + size_t(x)]
                                     : sampleBilinear(heatmap, heatmapSize, size, x, y);
            const QRgb c = gradCamColor(value);
            auto mix = [a](int base, int over) {
                return int(std::lround((1.0 - a) * base + a * over));
            };
            row[x] = qRgb(mix(qRed(row[x]), qRed(c)), mix(qGreen(row[x]), qGreen(c)),
                          mix(qBlue(row[x]), qBlue(c)));
        }
    }
    return out;
}

QImage gradCamOverlay(const GradCamResult &result, double opacity)
{
    return gradCamOverlay(result.input, result.heatmap, result.size,
                          result.input.isNull() ? 1.0 : opacity);
}

Status writePngAtomically(const QImage &image, const QString &path)
{
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    if (image.isNull() || !image.save(&buffer, "PNG"))
        return Error{
            QStringLiteral("cannot write “%1”: the image cannot be encoded as PNG").arg(path)};
    return writeFileAtomically(path, bytes);
}

} // namespace ifs
