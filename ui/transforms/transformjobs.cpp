#include "transforms/transformjobs.h"

#include "transforms/torchrng.h"

#include <QElapsedTimer>

#include <exception>

namespace ifs {

namespace {

constexpr int kOutputSide = 768; // display copies of outputs are at most this large
constexpr int kStepSide = 512;

QImage fitted(const QImage &image, int side)
{
    if (image.isNull() || std::max(image.width(), image.height()) <= side)
        return image;
    return image.scaled(side, side, Qt::KeepAspectRatio, Qt::SmoothTransformation);
}

/// Index of the last Normalize step, or -1.
int lastNormalize(const CompiledPipeline &pipeline)
{
    const QList<TransformStep> &steps = pipeline.pipeline().steps;
    for (int i = int(steps.size()) - 1; i >= 0; --i)
        if (steps[i].name == u"Normalize")
            return i;
    return -1;
}

/// Display image of a step's data; tensors after Normalize are denormalised.
QImage displayImage(const TransformData &data, bool denormalise, const CompiledPipeline &pipeline,
                    int side)
{
    if (!data.isTensor())
        return fitted(data.image, side);
    return fitted(
        denormalise ? tensorToImage(data.tensor, pipeline.normalizeMean(), pipeline.normalizeStd())
                    : tensorToImage(data.tensor),
        side);
}

PreviewOutput makeOutput(const Result<TransformRun> &run, const CompiledPipeline &pipeline,
                         quint64 seed)
{
    PreviewOutput out;
    out.seed = seed;
    if (!run) {
        out.error = run.errorMessage();
        return out;
    }
    const TransformData &data = run->output;
    out.isTensor = data.isTensor();
    out.denormalised = out.isTensor && lastNormalize(pipeline) >= 0;
    out.image = displayImage(data, out.denormalised, pipeline, kOutputSide);
    out.size = data.size();
    out.description = data.describe();
    if (out.isTensor)
        out.stats = tensorStats(data.tensor);
    for (const StepTrace &trace : run->steps) {
        if (!trace.regionInInput.isEmpty())
            out.regions.append(trace.regionInInput);
        out.summaries.append(trace.name + QStringLiteral(": ")
                             + (trace.summary.isEmpty() ? QStringLiteral("—") : trace.summary));
    }
    return out;
}

QList<PreviewStep> makeSteps(const QImage &input, const TransformRun &run,
                             const CompiledPipeline &pipeline)
{
    QList<PreviewStep> steps;
    PreviewStep first;
    first.name = QObject::tr("Input");
    first.description = TransformData{input, {}}.describe();
    first.summary = QObject::tr("as torchvision's loader gives it");
    first.image = fitted(input, kStepSide);
    steps.append(first);
    const int normalizeAt = lastNormalize(pipeline);
    for (const StepTrace &trace : run.steps) {
        PreviewStep step;
        step.name = trace.name;
        step.summary = trace.summary;
        step.applied = trace.applied;
        step.description = trace.output.describe();
        step.denormalised
            = trace.output.isTensor() && normalizeAt >= 0 && trace.step >= normalizeAt;
        step.image = displayImage(trace.output, step.denormalised, pipeline, kStepSide);
        steps.append(step);
    }
    return steps;
}

Error supersededError()
{
    return Error{QStringLiteral("superseded"), ErrorCode::Superseded};
}

/// The pipeline compiled, with the preview's memory bound.
Result<CompiledPipeline> compileBounded(const TransformPipeline &pipeline, qint64 memoryBound)
{
    // A step the engine cannot reproduce (a Lambda) is skipped with its reason in the strip, so
    // the rest of the pipeline still previews.
    Result<CompiledPipeline> compiled
        = CompiledPipeline::compile(pipeline, CompiledPipeline::Unsupported::Skip);
    if (compiled)
        compiled->setMemoryBound(memoryBound);
    return compiled;
}

} // namespace

qint64 previewMemoryBound()
{
    return std::min<qint64>(defaultTransformMemoryBound() / 4, qint64(1) << 30);
}

Result<PreviewResult> TransformPreviewJob::run(const PreviewRequest &request,
                                               const std::function<bool()> &superseded)
{
    try {
        QElapsedTimer timer;
        timer.start();
        PreviewResult result;
        result.path = request.path;
        result.seed = request.seed;
        result.traceDraw = request.traceDraw;
        QImage input = request.image;
        if (input.isNull()) {
            Result<QImage> loaded = loadTransformInput(request.path);
            if (!loaded)
                return loaded.error();
            input = std::move(loaded).value();
        }
        result.original = input;
        result.originalDescription = TransformData{input, {}}.describe();
        auto stop = [&superseded] {
            return superseded && superseded();
        };

        const Result<CompiledPipeline> train = compileBounded(request.train, request.memoryBound);
        if (!train) {
            result.trainError = train.errorMessage();
        } else {
            for (int k = 0; k < request.draws; ++k) {
                if (stop())
                    return supersededError();
                // Draw k is what `torch.manual_seed(seed + k); train_transform(img)` gives.
                const quint64 seed = request.seed + quint64(k);
                TorchGenerator rng(seed);
                const bool trace = k == request.traceDraw;
                const Result<TransformRun> run = train->run(input, rng, trace);
                result.train.append(makeOutput(run, train.value(), seed));
                if (trace && run)
                    result.trainSteps = makeSteps(input, run.value(), train.value());
            }
        }
        if (stop())
            return supersededError();
        const Result<CompiledPipeline> val = compileBounded(request.val, request.memoryBound);
        if (!val) {
            result.valError = val.errorMessage();
        } else {
            TorchGenerator rng(request.seed);
            const Result<TransformRun> run = val->run(input, rng, true);
            result.val = makeOutput(run, val.value(), request.seed);
            if (run)
                result.valSteps = makeSteps(input, run.value(), val.value());
        }
        result.milliseconds = double(timer.nsecsElapsed()) / 1e6;
        return result;
    } catch (const std::bad_alloc &) {
        return Error{QObject::tr("Not enough memory to preview “%1”").arg(request.path)};
    } catch (const std::exception &e) {
        return Error{QObject::tr("Cannot preview “%1”: %2")
                         .arg(request.path, QString::fromLocal8Bit(e.what()))};
    }
}

TransformPreviewJob::TransformPreviewJob(QObject *parent)
    : QObject(parent)
{
    // Two threads: a superseded run finishes its current draw while the next one starts.
    m_job.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-preview"), 2));
    m_job.onFinished([this](const PreviewResult &result) { Q_EMIT finished(result); });
    // Only the latest request reports: the failure is its.
    m_job.onFailed([this](const Error &error) { Q_EMIT failed(m_lastId, error.message); });
}

TransformPreviewJob::~TransformPreviewJob() = default;

quint64 TransformPreviewJob::request(const PreviewRequest &request)
{
    const quint64 id = ++m_lastId;
    m_job.start([request, id](JobContext<NoProgress> &context) -> Result<PreviewResult> {
        Result<PreviewResult> result = run(request, [&context] { return context.isCancelled(); });
        if (result)
            result->id = id;
        return result;
    });
    Q_EMIT started(id);
    return id;
}

void TransformPreviewJob::cancel()
{
    m_job.discard();
}

bool TransformPreviewJob::isRunning() const
{
    return m_job.isRunning();
}

} // namespace ifs
