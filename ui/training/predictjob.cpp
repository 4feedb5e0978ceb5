#include "training/predictjob.h"

#include "dataset/imagefolder.h"

#include <QCollator>
#include <QDateTime>
#include <QDirIterator>
#include <QFileInfo>
#include <QMutex>
#include <QMutexLocker>

#include <algorithm>
#include <exception>

namespace ifs {

QStringList collectImages(const QStringList &paths, int limit, bool *truncated)
{
    QStringList images;
    bool cut = false;
    for (const QString &path : paths) {
        const QFileInfo info(path);
        if (!info.isDir()) {
            images.append(info.absoluteFilePath());
            continue;
        }
        QStringList found;
        QDirIterator it(info.absoluteFilePath(), QDir::Files | QDir::Hidden,
                        QDirIterator::Subdirectories | QDirIterator::FollowSymlinks);
        while (it.hasNext()) {
            const QString file = it.next();
            if (hasImageExtension(QFile::encodeName(it.fileName()).toStdString()))
                found.append(file);
        }
        QCollator collator;
        collator.setNumericMode(true);
        std::sort(found.begin(), found.end(), collator);
        images.append(found);
    }
    if (limit > 0 && images.size() > limit) {
        images.resize(limit);
        cut = true;
    }
    if (truncated)
        *truncated = cut;
    return images;
}

struct PredictJob::Cache
{
    QMutex mutex; // held for a whole prediction: a Classifier is used by one thread at a time
    QString path;
    QString device;
    QDateTime modified; // last.pth is rewritten every epoch: reload it then
    std::unique_ptr<Classifier> classifier;
};

PredictJob::PredictJob(QObject *parent)
    : QObject(parent)
    , m_cache(std::make_shared<Cache>())
{
    m_job.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-evaluation"), 2));
    m_job.onFinished([this](const Predicted &predicted) {
        Q_EMIT finished(predicted.predictions, predicted.classes, predicted.notes);
    });
    m_job.onFailed([this](const Error &error) { Q_EMIT failed(error.message); });
    m_camJob.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-evaluation"), 2));
    m_camJob.onFinished([this](const Explained &explained) {
        Q_EMIT gradCamFinished(explained.image, explained.result);
    });
    m_camJob.onFailed([this](const Error &error) { Q_EMIT gradCamFailed(error.message); });
}

void PredictJob::startGradCam(const QString &checkpoint, const QString &image, int classIndex,
                              const ClassifierOptions &options)
{
    m_camJob.start([=, cache = m_cache](JobContext<NoProgress> &context) -> Result<Explained> {
        QMutexLocker lock(&cache->mutex);
        if (context.isCancelled())
            return context.cancelled();
        Result<Classifier *> classifier = cachedClassifier(*cache, checkpoint, options);
        if (!classifier)
            return classifier.error();
        GradCamOptions camOptions;
        camOptions.classIndex = classIndex;
        Result<GradCamResult> cam = computeGradCam(*classifier.value(), image, camOptions);
        if (!cam)
            return cam.error();
        return Explained{image, std::move(cam).value()};
    });
}

Result<Classifier *> PredictJob::cachedClassifier(Cache &cache, const QString &checkpoint,
                                                  const ClassifierOptions &options)
{
    const QDateTime modified = QFileInfo(checkpoint).lastModified();
    if (!cache.classifier || cache.path != checkpoint || cache.device != options.device
        || cache.modified != modified) {
        cache.classifier.reset();
        Result<Classifier> loaded = Classifier::load(checkpoint, options);
        if (!loaded)
            return loaded.error();
        cache.classifier = std::make_unique<Classifier>(std::move(loaded).value());
        cache.path = checkpoint;
        cache.device = options.device;
        cache.modified = modified;
    }
    return cache.classifier.get();
}

PredictJob::~PredictJob() = default;

bool PredictJob::isRunning() const
{
    return m_job.isRunning();
}

void PredictJob::start(const QString &checkpoint, const QStringList &paths, int topk,
                       const ClassifierOptions &options, int limit)
{
    const Request request{checkpoint, paths, topk, options, limit};
    m_job.start([request, cache = m_cache](JobContext<NoProgress> &context) {
        return predict(request, *cache, context);
    });
}

auto PredictJob::predict(const Request &request, Cache &cache, JobContext<NoProgress> &context)
    -> Result<Predicted>
{
    Predicted predicted;
    try {
        bool truncated = false;
        const QStringList images = collectImages(request.paths, request.limit, &truncated);
        if (images.isEmpty()) {
            return Error{QObject::tr("No image files found in %1")
                             .arg(request.paths.join(QStringLiteral(", ")))};
        }
        if (truncated) {
            predicted.notes.append(
                QObject::tr("Only the first %1 images are predicted").arg(request.limit));
        }
        QMutexLocker lock(&cache.mutex);
        // Superseded while a run before it held the classifier: nobody waits for this one.
        if (context.isCancelled())
            return context.cancelled();
        if (Result<Classifier *> loaded
            = cachedClassifier(cache, request.checkpoint, request.options);
            !loaded)
            return loaded.error();
        predicted.classes = cache.classifier->classes();
        predicted.notes = cache.classifier->notes() + predicted.notes;
        Result<QList<ImagePrediction>> predictions
            = cache.classifier->predict(images, request.topk);
        if (!predictions)
            return predictions.error();
        predicted.predictions = predictions.value();
    } catch (const std::exception &error) {
        return Error{QObject::tr("Prediction failed: %1")
                         .arg(QString::fromLocal8Bit(error.what()).section(u'\n', 0, 0))};
    }
    return predicted;
}

} // namespace ifs
