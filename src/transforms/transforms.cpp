#include "transforms/transforms.h"

#include "base/memorybudget.h"
#include "image/imageprobe.h"
#include "image/pilops.h"
#include "transforms/transformop.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>

namespace ifs {

namespace {

QImage asPilImage(const QImage &image)
{
    if (image.format() == QImage::Format_RGB888 || image.format() == QImage::Format_Grayscale8)
        return image;
    return image.convertToFormat(QImage::Format_RGB888);
}

} // namespace

int TransformData::channels() const
{
    if (isTensor())
        return tensor.channels;
    return image.isNull() ? 0 : ops::channelsOf(image);
}

QSize TransformData::size() const
{
    return isTensor() ? QSize(tensor.width, tensor.height) : image.size();
}

QString TransformData::describe() const
{
    if (isTensor())
        return QStringLiteral("tensor float32 [%1, %2, %3]")
            .arg(tensor.channels)
            .arg(tensor.height)
            .arg(tensor.width);
    if (image.isNull())
        return QStringLiteral("nothing");
    if (crops > 0)
        return QStringLiteral("tuple of %1 PIL Images %2 %3 × %4 (side by side)")
            .arg(crops)
            .arg(ops::channelsOf(image) == 1 ? QStringLiteral("L") : QStringLiteral("RGB"))
            .arg(image.width() / crops)
            .arg(image.height());
    return QStringLiteral("PIL Image %1 %2 × %3")
        .arg(ops::channelsOf(image) == 1 ? QStringLiteral("L") : QStringLiteral("RGB"))
        .arg(image.width())
        .arg(image.height());
}

qint64 DataShape::bytes() const
{
    if (!sizeKnown())
        return -1;
    // In double, so that sizes no image could have (Pad(2**30)) saturate instead of wrapping.
    const double rowBytes = tensor ? 4.0 * double(channels) * double(width)
                                   : double((qint64(channels) * width + 3) / 4 * 4);
    const double total = rowBytes * double(height);
    return total >= 9.0e18 ? std::numeric_limits<qint64>::max() : qint64(total);
}

QString DataShape::describe() const
{
    const QString w = sizeKnown() ? QString::number(width) : QStringLiteral("?");
    const QString h = sizeKnown() ? QString::number(height) : QStringLiteral("?");
    if (tensor)
        return QStringLiteral("tensor float32 [%1, %2, %3]").arg(channels).arg(h, w);
    return QStringLiteral("PIL Image %1 %2 × %3")
        .arg(channels == 1 ? QStringLiteral("L") : QStringLiteral("RGB"), w, h);
}

DataShape DataShape::of(const TransformData &data)
{
    const QSize size = data.size();
    return {data.channels(), size.width(), size.height(), data.isTensor()};
}

qint64 defaultTransformMemoryBound()
{
    return availableMemoryBytes() / 4;
}

struct CompiledPipeline::Impl
{
    TransformPipeline pipeline;
    std::vector<ops::PreparedStep> steps;

    /// What each step may be taken for by a fused path, in order.
    std::vector<ops::FusedPart> fusedParts() const
    {
        std::vector<ops::FusedPart> parts;
        for (const ops::PreparedStep &step : steps)
            parts.push_back(step.op->fusedPart());
        return parts;
    }

    /// The last Normalize, if any.
    std::optional<ops::fused::Normalize> lastNormalize() const
    {
        for (auto it = steps.rbegin(); it != steps.rend(); ++it)
            if (const ops::FusedPart part = it->op->fusedPart();
                const auto *normalize = std::get_if<ops::fused::Normalize>(&part))
                return *normalize;
        return std::nullopt;
    }
};

CompiledPipeline::CompiledPipeline()
    : d(std::make_shared<Impl>())
    , m_memoryBound(defaultTransformMemoryBound())
{ }
CompiledPipeline::~CompiledPipeline() = default;
CompiledPipeline::CompiledPipeline(const CompiledPipeline &) = default;
CompiledPipeline &CompiledPipeline::operator=(const CompiledPipeline &) = default;

namespace {

/// A step the engine cannot reproduce, skipped in a preview: its input passes on unchanged.
class SkippedStep final : public ops::PreparedOp
{
public:
    QString reason;

    void apply(ops::RunState &run) const override
    {
        run.trace->applied = false;
        run.trace->summary = QStringLiteral("skipped: ") + reason;
    }
};

} // namespace

Result<CompiledPipeline> CompiledPipeline::compile(const TransformPipeline &pipeline,
                                                   Unsupported unsupported)
{
    auto impl = std::make_shared<Impl>();
    for (qsizetype i = 0; i < pipeline.steps.size(); ++i) {
        const TransformStep &step = pipeline.steps[i];
        const QString where = QStringLiteral("Step %1, %2: ").arg(i + 1).arg(step.name);
        Result<TransformStep> bound = normalizeStep(step);
        if (!bound)
            return Error{where + bound.errorMessage()};
        const TransformDefinition *definition = findDefinition(bound->name);
        if (definition && !definition->previewOnly.isEmpty() && unsupported == Unsupported::Refuse)
            return Error{where + definition->previewOnly};
        if (definition && !definition->unsupported.isEmpty()) {
            if (unsupported == Unsupported::Refuse)
                return Error{where + definition->unsupported};
            auto skipped = std::make_shared<SkippedStep>();
            skipped->reason = definition->unsupported;
            impl->steps.push_back({definition, std::move(skipped)});
            impl->pipeline.steps.append(std::move(bound).value());
            continue;
        }
        try {
            impl->steps.push_back(ops::prepareStep(bound.value()));
        } catch (const ops::StepError &e) {
            return Error{where + e.message};
        }
        impl->pipeline.steps.append(std::move(bound).value());
    }
    CompiledPipeline compiled;
    compiled.d = std::move(impl);
    return compiled;
}

const TransformPipeline &CompiledPipeline::pipeline() const
{
    return d->pipeline;
}

void CompiledPipeline::setMemoryBound(qint64 bytes)
{
    m_memoryBound = std::max<qint64>(bytes, 0);
}

qint64 CompiledPipeline::memoryBound() const
{
    return m_memoryBound;
}

DataShape CompiledPipeline::outputShape(const DataShape &input) const
{
    DataShape shape = input;
    for (const ops::PreparedStep &step : d->steps)
        shape = step.op->outputShape(shape);
    return shape;
}

bool CompiledPipeline::isEmpty() const
{
    return d->steps.empty();
}

bool CompiledPipeline::isRandom() const
{
    return std::any_of(d->steps.begin(), d->steps.end(),
                       [](const ops::PreparedStep &s) { return s.definition->random; });
}

std::vector<float> CompiledPipeline::normalizeMean() const
{
    const std::optional<ops::fused::Normalize> normalize = d->lastNormalize();
    return normalize ? normalize->mean : std::vector<float>();
}

std::vector<float> CompiledPipeline::normalizeStd() const
{
    const std::optional<ops::fused::Normalize> normalize = d->lastNormalize();
    return normalize ? normalize->std : std::vector<float>();
}

std::optional<ResizedCropPlan> CompiledPipeline::resizedCropPlan() const
{
    // [RandomResizedCrop, RandomHorizontalFlip?, ToTensor, Normalize?], nothing else.
    namespace fused = ops::fused;
    const std::vector<ops::FusedPart> parts = d->fusedParts();
    size_t k = 0;
    const auto *crop = k < parts.size() ? std::get_if<fused::ResizedCrop>(&parts[k]) : nullptr;
    if (!crop)
        return std::nullopt;
    ++k;
    ResizedCropPlan plan;
    plan.outHeight = crop->outHeight;
    plan.outWidth = crop->outWidth;
    plan.scaleLo = crop->scale.lo;
    plan.scaleHi = crop->scale.hi;
    plan.ratioLo = crop->ratio.lo;
    plan.ratioHi = crop->ratio.hi;
    plan.filter = crop->filter;
    if (k < parts.size())
        if (const auto *flip = std::get_if<fused::HorizontalFlip>(&parts[k])) {
            plan.flipP = flip->p;
            ++k;
        }
    if (k >= parts.size() || !std::holds_alternative<fused::ToTensor>(parts[k]))
        return std::nullopt;
    ++k;
    if (k < parts.size())
        if (const auto *normalize = std::get_if<fused::Normalize>(&parts[k])) {
            plan.mean = normalize->mean;
            plan.std = normalize->std;
            ++k;
        }
    if (k != parts.size())
        return std::nullopt;
    return plan;
}

Result<TransformRun> CompiledPipeline::run(const QImage &image, TorchGenerator &rng,
                                           bool trace) const
{
    if (image.isNull())
        return Error{QStringLiteral("No image to transform")};
    TransformRun run;
    ops::RunState state{rng, {}, {}, nullptr, m_memoryBound};
    state.data.image = asPilImage(image);
    if (Status fits = checkSizes(DataShape::of(state.data), trace); !fits)
        return fits.error();
    for (size_t i = 0; i < d->steps.size(); ++i) {
        const ops::PreparedStep &step = d->steps[i];
        const QString &name = step.definition->name;
        StepTrace stepTrace;
        stepTrace.step = int(i);
        stepTrace.name = name;
        stepTrace.inputSize = state.size();
        state.trace = &stepTrace;
        try {
            step.apply(state);
        } catch (const ops::StepError &e) {
            return Error{QStringLiteral("Step %1, %2: %3").arg(i + 1).arg(name, e.message), e.code};
        } catch (const std::bad_alloc &) {
            return Error{QStringLiteral("Step %1, %2: not enough memory for its output (from %3)")
                             .arg(i + 1)
                             .arg(name, state.data.describe()),
                         ErrorCode::OutOfMemory};
        }
        if (!state.data.isTensor() && state.data.image.isNull())
            return Error{QStringLiteral("Step %1, %2: not enough memory").arg(i + 1).arg(name),
                         ErrorCode::OutOfMemory};
        stepTrace.outputSize = state.size();
        if (trace) {
            stepTrace.output = state.data;
            state.keptBytes += DataShape::of(state.data).bytes();
        }
        run.steps.append(std::move(stepTrace));
    }
    run.output = std::move(state.data);
    return run;
}

Status CompiledPipeline::checkSizes(const DataShape &input, bool trace) const
{
    // The sizes the steps will have, walked before the first one runs: a Resize((60000, 60000))
    // followed by ToTensor is refused at once, not after a minute spent on the resize. Shapes
    // that depend on a random draw are left to the check when the step runs.
    DataShape shape = input;
    qint64 kept = 0;
    for (size_t i = 0; i < d->steps.size(); ++i) {
        shape = d->steps[i].op->outputShape(shape);
        const qint64 bytes = shape.bytes();
        if (!shape.exact || bytes < 0)
            continue;
        if (bytes > m_memoryBound || kept > m_memoryBound - bytes)
            return Error{QStringLiteral("Step %1, %2: %3")
                             .arg(i + 1)
                             .arg(d->steps[i].definition->name,
                                  ops::memoryRefusal(shape, kept, m_memoryBound)),
                         ErrorCode::OutOfMemory};
        if (trace)
            kept += bytes;
    }
    return success();
}

// ---------------------------------------------------------------------------------------------

Result<QImage> loadTransformInput(const QString &path, const LoadOptions &options)
{
    Result<QImage> image = loadImageRgb(path);
    if (!image || !options.applyExifOrientation)
        return image;
    const Result<ImageHeader> header = probeImage(path);
    if (!header || header->exifOrientation <= 1)
        return image;
    return pil::applyExifOrientation(image.value(), header->exifOrientation);
}

ImageTensor imageToTensor(const QImage &image)
{
    ImageTensor t;
    t.channels = ops::channelsOf(image);
    t.height = image.height();
    t.width = image.width();
    t.data.resize(size_t(t.numel()));
    // ToTensor: img.float().div(255), exactly x / 255 in float32.
    float lut[256];
    for (int v = 0; v < 256; ++v)
        lut[v] = float(v) / 255.0f;
    const qsizetype plane = qsizetype(t.height) * t.width;
    for (int y = 0; y < t.height; ++y) {
        const uchar *src = image.constScanLine(y);
        for (int c = 0; c < t.channels; ++c) {
            float *dst = t.data.data() + c * plane + qsizetype(y) * t.width;
            for (int x = 0; x < t.width; ++x)
                dst[x] = lut[src[x * t.channels + c]];
        }
    }
    return t;
}

QImage tensorToImage(const ImageTensor &tensor, const std::vector<float> &mean,
                     const std::vector<float> &std)
{
    if (tensor.channels != 1 && tensor.channels != 3)
        return {};
    QImage out(tensor.width, tensor.height,
               tensor.channels == 1 ? QImage::Format_Grayscale8 : QImage::Format_RGB888);
    if (out.isNull())
        return {};
    const bool denormalize = !mean.empty() && !std.empty();
    for (int y = 0; y < tensor.height; ++y) {
        uchar *dst = out.scanLine(y);
        for (int c = 0; c < tensor.channels; ++c) {
            const float m
                = denormalize ? mean[mean.size() == 1 ? 0 : size_t(c) % mean.size()] : 0.0f;
            const float s = denormalize ? std[std.size() == 1 ? 0 : size_t(c) % std.size()] : 1.0f;
            const float *src = tensor.plane(c) + qsizetype(y) * tensor.width;
            for (int x = 0; x < tensor.width; ++x) {
                float v = src[x] * s + m;
                v = std::isnan(v) ? 0.0f : std::clamp(v, 0.0f, 1.0f);
                dst[x * tensor.channels + c] = uchar(std::lround(v * 255.0f));
            }
        }
    }
    return out;
}

ChannelStats tensorStats(const ImageTensor &tensor)
{
    ChannelStats stats;
    const qsizetype n = qsizetype(tensor.height) * tensor.width;
    for (int c = 0; c < tensor.channels; ++c) {
        const float *p = tensor.plane(c);
        double sum = 0.0, sumSq = 0.0;
        double lo = n ? p[0] : 0.0, hi = lo;
        for (qsizetype i = 0; i < n; ++i) {
            const double v = p[i];
            sum += v;
            sumSq += v * v;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        const double mean = n ? sum / double(n) : 0.0;
        stats.mean.push_back(mean);
        stats.std.push_back(n ? std::sqrt(std::max(0.0, sumSq / double(n) - mean * mean)) : 0.0);
        stats.min.push_back(lo);
        stats.max.push_back(hi);
    }
    return stats;
}

} // namespace ifs
