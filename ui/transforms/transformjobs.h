#pragma once

#include "common/backgroundjob.h"
#include "transforms/transformadvice.h"
#include "transforms/transforms.h"

#include <QImage>
#include <QList>
#include <QObject>
#include <QRectF>
#include <QString>

#include <functional>

namespace ifs {

/// The memory bound of one preview run (CompiledPipeline::setMemoryBound): tighter than
/// training's, since the app keeps running beside it and every traced step's output is kept. A
/// quarter of the default bound, at most 1 GiB.
qint64 previewMemoryBound();

/// What the preview should show: one image through both pipelines.
struct PreviewRequest
{
    QString path; ///< the dataset image
    QImage image; ///< the image as loaded before (skips decoding); may be null
    TransformPipeline train;
    TransformPipeline val;
    quint64 seed = 0; ///< train draw k uses torch.manual_seed(seed + k); val seed
    int draws = 8; ///< random draws of the train pipeline
    int traceDraw = 0; ///< the train draw whose steps are traced
    /// Each run's memory bound: a step whose output would exceed it fails with the step named.
    qint64 memoryBound = previewMemoryBound();
};

/// One step's output as shown in the step-by-step strip.
struct PreviewStep
{
    QString name;
    QString summary; ///< drawn parameters (StepTrace::summary)
    bool applied = true;
    QString description; ///< "PIL Image RGB 224 × 224" / "tensor float32 [3, 224, 224]"
    QImage image; ///< for display (denormalised after Normalize), at most 512 px
    bool denormalised = false;
};

/// One run's output, ready for display.
struct PreviewOutput
{
    QImage image; ///< for display (denormalised after Normalize), at most 768 px
    QSize size; ///< the output's real width × height
    QString description; ///< "tensor float32 [3, 224, 224]" / "PIL Image RGB 500 × 375"
    bool isTensor = false;
    bool denormalised = false;
    ChannelStats stats; ///< of the output tensor (after Normalize: the normalised values)
    QList<QRectF> regions; ///< crop boxes in the input image's coordinates
    QStringList summaries; ///< "Step: drawn parameters" per step
    quint64 seed = 0; ///< the torch.manual_seed this run used
    QString error; ///< the run failed (the step is named)
};

/// A finished preview.
struct PreviewResult
{
    quint64 id = 0;
    QString path;
    QImage original; ///< the loaded input (RGB, as torchvision's loader gives it)
    QString originalDescription;
    QString trainError; ///< the train pipeline does not compile
    QString valError;
    QList<PreviewOutput> train;
    PreviewOutput val;
    QList<PreviewStep> trainSteps; ///< the trace of train draw traceDraw (input first)
    QList<PreviewStep> valSteps; ///< the trace of the val run (input first)
    int traceDraw = 0;
    quint64 seed = 0;
    double milliseconds = 0.0;
};

/// Runs previews on a small thread pool of their own, latest request wins: a request supersedes
/// the one before it, which stops between draws and reports nothing. Each request that is not
/// superseded ends with exactly one of finished() or failed().
class TransformPreviewJob : public QObject
{
    Q_OBJECT

public:
    explicit TransformPreviewJob(QObject *parent = nullptr);
    ~TransformPreviewJob() override;

    /// Starts a preview; returns its id.
    quint64 request(const PreviewRequest &request);
    /// Drops the request in flight (it reports nothing).
    void cancel();
    /// The latest request has not reported yet.
    bool isRunning() const;

    /// The work itself, synchronous (for tests and the job's worker). `superseded` is polled
    /// between runs; when it fired, returns an ErrorCode::Superseded error.
    static Result<PreviewResult> run(const PreviewRequest &request,
                                     const std::function<bool()> &superseded = {});

Q_SIGNALS:
    void started(quint64 id);
    void finished(const ifs::PreviewResult &result);
    void failed(quint64 id, const QString &message);

private:
    BackgroundJob<PreviewResult> m_job;
    quint64 m_lastId = 0;
};

} // namespace ifs
