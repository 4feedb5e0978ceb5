#pragma once

#include "common/backgroundjob.h"
#include "training/evaluation.h"

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

Q_SIGNALS:
    /// `classes`: the checkpoint's class names; `notes`: load notes, truncation.
    void finished(const QList<ifs::ImagePrediction> &predictions, const QStringList &classes,
                  const QStringList &notes);
    void failed(const QString &message);

private:
    struct Cache;
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
};

} // namespace ifs
