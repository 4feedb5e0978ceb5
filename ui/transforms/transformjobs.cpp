#include "transforms/transformjobs.h"

#include "transforms/torchrng.h"

#include <QElapsedTimer>
#include <QtConcurrent>

#include <exception>
#include <mutex>
#include <optional>

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

const QString kSuperseded = QStringLiteral("superseded");

struct PreviewOutcome
{
    bool ok = false;
    QString error;
    PreviewResult result;
};

} // namespace

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

        const Result<CompiledPipeline> train = CompiledPipeline::compile(request.train);
        if (!train) {
            result.trainError = train.errorMessage();
        } else {
            for (int k = 0; k < request.draws; ++k) {
                if (stop())
                    return Error{kSuperseded};
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
            return Error{kSuperseded};
        const Result<CompiledPipeline> val = CompiledPipeline::compile(request.val);
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
    , m_latest(std::make_shared<std::atomic<quint64>>(0))
{
    // Two threads: a superseded run finishes its current draw while the next one starts.
    m_pool.setMaxThreadCount(2);
}

TransformPreviewJob::~TransformPreviewJob()
{
    cancel();
    m_pool.waitForDone();
}

quint64 TransformPreviewJob::request(const PreviewRequest &request)
{
    const quint64 id = m_latest->fetch_add(1) + 1;
    const std::shared_ptr<std::atomic<quint64>> latest = m_latest;
    auto *watcher = new QFutureWatcher<PreviewOutcome>(this);
    connect(watcher, &QFutureWatcher<PreviewOutcome>::finished, this, [this, watcher, id] {
        watcher->deleteLater();
        --m_running;
        if (id != m_latest->load())
            return; // superseded: a later request reports
        PreviewOutcome outcome = watcher->result();
        if (!outcome.ok) {
            Q_EMIT failed(id, outcome.error);
            return;
        }
        outcome.result.id = id;
        Q_EMIT finished(outcome.result);
    });
    ++m_running;
    watcher->setFuture(QtConcurrent::run(&m_pool, [request, latest, id] {
        Result<PreviewResult> result = run(request, [&latest, id] { return latest->load() != id; });
        PreviewOutcome outcome;
        outcome.ok = result.ok();
        if (result)
            outcome.result = std::move(result).value();
        else
            outcome.error = result.errorMessage();
        return outcome;
    }));
    Q_EMIT started(id);
    return id;
}

void TransformPreviewJob::cancel()
{
    m_latest->fetch_add(1);
}

bool TransformPreviewJob::isRunning() const
{
    return m_running > 0;
}

// ---- DatasetStatsJob -------------------------------------------------------------------------

struct DatasetStatsJob::Shared
{
    std::atomic_bool cancel{false};
    std::atomic<int> done{0};
    std::atomic<int> total{0};
    // Written by the worker, read once the future finished.
    std::optional<DatasetChannelStats> stats;
    QString error;
};

DatasetStatsJob::DatasetStatsJob(QObject *parent)
    : QObject(parent)
{
    m_poll.setInterval(100);
    connect(&m_poll, &QTimer::timeout, this, [this] {
        if (m_shared && m_shared->total.load() > 0)
            Q_EMIT progressChanged(m_shared->done.load(), m_shared->total.load());
    });
    connect(&m_watcher, &QFutureWatcher<void>::finished, this, [this] {
        m_poll.stop();
        const std::shared_ptr<Shared> shared = m_shared;
        if (!shared)
            return;
        if (shared->cancel.load() || (shared->stats && shared->stats->cancelled))
            Q_EMIT cancelled();
        else if (!shared->error.isEmpty() || !shared->stats)
            Q_EMIT failed(shared->error.isEmpty() ? tr("The statistics could not be computed")
                                                  : shared->error);
        else
            Q_EMIT finished(*shared->stats);
    });
}

DatasetStatsJob::~DatasetStatsJob()
{
    requestCancel();
    m_watcher.waitForFinished();
}

void DatasetStatsJob::start(const QStringList &paths, int maxImages, quint64 seed, int threads)
{
    if (isRunning()) {
        requestCancel();
        m_watcher.waitForFinished();
    }
    auto shared = std::make_shared<Shared>();
    m_shared = shared;
    m_watcher.setFuture(QtConcurrent::run([shared, paths, maxImages, seed, threads] {
        try {
            Result<DatasetChannelStats> stats = computeDatasetStats(
                paths, maxImages, seed, threads, &shared->cancel, [&shared](int done, int total) {
                    shared->done.store(done, std::memory_order_relaxed);
                    shared->total.store(total, std::memory_order_relaxed);
                });
            if (stats)
                shared->stats = std::move(stats).value();
            else
                shared->error = stats.errorMessage();
        } catch (const std::exception &e) {
            shared->error = QString::fromLocal8Bit(e.what());
        }
    }));
    m_poll.start();
}

void DatasetStatsJob::requestCancel()
{
    if (m_shared)
        m_shared->cancel = true;
}

bool DatasetStatsJob::isRunning() const
{
    return m_watcher.isRunning();
}

} // namespace ifs
