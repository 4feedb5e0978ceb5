#pragma once

#include "common/backgroundjob.h"
#include "training/evaluation.h"
#include "training/gradcam.h"

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

#include <memory>

namespace ifs {

/// The images a prediction request names: files as given, folders walked for image files
/// (sorted), at most `limit`.
QStringList collectImages(const QStringList &paths, int limit, bool *truncated = nullptr);

/// Loads a checkpoint and predicts the top-k classes of images on the global thread pool. The
/// loaded classifier is kept for the next request on the same checkpoint. Each start() ends
/// with exactly one of finished() or failed(); a new start() supersedes a running one.
class PredictJob : public QObject
{
    Q_OBJECT

public:
    explicit PredictJob(QObject *parent = nullptr);
    ~PredictJob() override;

    /// `paths`: image files and folders (walked for images, at most `limit`).
    void start(const QString &checkpoint, const QStringList &paths, int topk,
               const ClassifierOptions &options, int limit = 5000);
    bool isRunning() const;

    /// Grad-CAM of one image for `classIndex` (-1: the predicted class) with the same cached
    /// classifier. Ends with exactly one of gradCamFinished() or gradCamFailed(); a new request
    /// supersedes a running one.
    void startGradCam(const QString &checkpoint, const QString &image, int classIndex,
                      const ClassifierOptions &options);

Q_SIGNALS:
    /// `classes`: the checkpoint's class names; `notes`: load notes, truncation.
    void finished(const QList<ifs::ImagePrediction> &predictions, const QStringList &classes,
                  const QStringList &notes);
    void failed(const QString &message);
    void gradCamFinished(const QString &image, const ifs::GradCamResult &result);
    void gradCamFailed(const QString &message);

private:
    struct Cache;
    struct Explained
    {
        QString image;
        GradCamResult result;
    };
    /// The classifier of `checkpoint` in `cache`, loaded when it is not there yet (or the file
    /// changed); the caller holds the cache's mutex.
    static Result<Classifier *> cachedClassifier(Cache &cache, const QString &checkpoint,
                                                 const ClassifierOptions &options);
    struct Predicted
    {
        QList<ImagePrediction> predictions;
        QStringList classes;
        QStringList notes;
    };
    struct Request
    {
        QString checkpoint;
        QStringList paths;
        int topk = 5;
        ClassifierOptions options;
        int limit = 0;
    };

    /// The work, on the worker thread.
    static Result<Predicted> predict(const Request &request, Cache &cache,
                                     JobContext<NoProgress> &context);

    std::shared_ptr<Cache> m_cache;
    BackgroundJob<Predicted> m_job;
    BackgroundJob<Explained> m_camJob;
};

} // namespace ifs
