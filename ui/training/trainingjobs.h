#pragma once

#include "training/evaluation.h"
#include "training/training.h"

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QTimer>

#include <functional>
#include <memory>
#include <vector>

class QThread;

namespace ifs {

/// Runs one Trainer on a thread of its own and brings its callbacks to the GUI thread.
///
/// Every signal is emitted in the thread the job lives in. Step callbacks (hundreds per second
/// on small images) are buffered and delivered together every 100 ms by stepsReady(); an epoch or
/// the end first delivers the steps before it. A run ends with exactly one finished(), emitted
/// once the worker thread has ended. Deleting the job stops a run and waits for it.
class TrainingJob : public QObject
{
    Q_OBJECT

public:
    explicit TrainingJob(QObject *parent = nullptr);
    ~TrainingJob() override;

    /// Starts a run; false (and nothing happens) while one is running.
    bool start(const TrainConfig &config);
    bool isRunning() const;
    /// The configuration of the current or last run.
    const TrainConfig &config() const { return m_config; }

    void pause();
    void resume();
    bool isPaused() const;
    /// Ends the run after the current batch; with `saveCheckpoint` last.pth keeps the exact
    /// position inside the epoch.
    void stop(bool saveCheckpoint = false);
    bool isStopping() const { return m_stopping; }
    /// Blocks until the worker thread has ended (closing the window, tests); false on timeout.
    /// finished() is still emitted from the event loop afterwards.
    bool wait(int milliseconds = -1);

Q_SIGNALS:
    void started(const ifs::TrainStart &start);
    void statusChanged(const QString &text);
    /// The steps since the last delivery, in order.
    void stepsReady(const QList<ifs::StepProgress> &steps);
    void epochFinished(const ifs::EpochReport &report);
    void finished(const ifs::TrainFinish &finish);

private:
    struct Shared;
    void flushSteps();

    TrainConfig m_config;
    std::shared_ptr<Shared> m_shared;
    QThread *m_thread = nullptr;
    QTimer m_flushTimer;
    bool m_stopping = false;
};

/// Lists the labelled images to evaluate on; called on a worker thread (it may scan a folder).
using SampleSource = std::function<Result<std::vector<LoaderSample>>()>;

/// Loads a checkpoint and evaluates it on labelled images on the global thread pool, with
/// progress (throttled to 10 Hz) and cancellation. Each start() ends with exactly one of
/// finished(), failed() or cancelled(); a new start() supersedes a running one, which then
/// reports nothing.
class EvaluationJob : public QObject
{
    Q_OBJECT

public:
    explicit EvaluationJob(QObject *parent = nullptr);
    ~EvaluationJob() override;

    /// `samples` is called on the worker first.
    void start(const QString &checkpoint, const SampleSource &samples,
               const ClassifierOptions &options, int batchSize = 128);
    void requestCancel();
    bool isRunning() const;

Q_SIGNALS:
    void progressChanged(qint64 done, qint64 total, const QString &text);
    /// `notes`: how the checkpoint was loaded (repaired prefixes, transforms' origin).
    void finished(std::shared_ptr<const ifs::Evaluation> evaluation, const QStringList &notes);
    void failed(const QString &message);
    void cancelled();

private:
    struct Run;
    std::shared_ptr<Run> m_run;
};

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
    struct Run;
    struct Cache;
    std::shared_ptr<Run> m_run;
    std::shared_ptr<Cache> m_cache;
};

} // namespace ifs
