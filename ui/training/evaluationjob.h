#pragma once

#include "common/backgroundjob.h"
#include "training/evaluation.h"

#include <QObject>
#include <QString>
#include <QStringList>

#include <functional>
#include <memory>
#include <vector>

namespace ifs {

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
    struct Progress
    {
        qint64 done = 0;
        qint64 total = 0;
        bool loading = true; ///< the images are listed and the checkpoint loaded
    };
    struct Evaluated
    {
        std::shared_ptr<const Evaluation> evaluation;
        QStringList notes;
    };

    /// The work, on the worker thread.
    static Result<Evaluated> evaluate(const QString &checkpoint, const SampleSource &samples,
                                      const ClassifierOptions &options, int batchSize,
                                      JobContext<Progress> &context);

    BackgroundJob<Evaluated, Progress> m_job;
};

} // namespace ifs
