#include "training/evaluationjob.h"

#include <QLocale>

#include <exception>

namespace ifs {

EvaluationJob::EvaluationJob(QObject *parent)
    : QObject(parent)
{
    // Minutes on a CPU for a large validation set: not on the global pool, where scans and
    // checkpoint reads would queue behind it.
    m_job.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-evaluation"), 2));
    m_job.onProgress([this](const Progress &progress) {
        const QLocale locale;
        Q_EMIT progressChanged(progress.done, progress.total,
                               progress.loading ? tr("Loading the images and the checkpoint…")
                                                : tr("Evaluating: %1 of %2 images")
                                                      .arg(locale.toString(progress.done),
                                                           locale.toString(progress.total)));
    });
    m_job.onFinished([this](const Evaluated &evaluated) {
        Q_EMIT finished(evaluated.evaluation, evaluated.notes);
    });
    m_job.onFailed([this](const Error &error) { Q_EMIT failed(error.message); });
    m_job.onCancelled([this] { Q_EMIT cancelled(); });
}

EvaluationJob::~EvaluationJob() = default;

bool EvaluationJob::isRunning() const
{
    return m_job.isRunning();
}

void EvaluationJob::requestCancel()
{
    m_job.requestCancel();
}

void EvaluationJob::start(const QString &checkpoint, const SampleSource &samples,
                          const ClassifierOptions &options, int batchSize)
{
    m_job.start([checkpoint, samples, options, batchSize](JobContext<Progress> &context) {
        return evaluate(checkpoint, samples, options, batchSize, context);
    });
}

auto EvaluationJob::evaluate(const QString &checkpoint, const SampleSource &samples,
                             const ClassifierOptions &options, int batchSize,
                             JobContext<Progress> &context) -> Result<Evaluated>
{
    try {
        context.setProgress({}); // "Loading…" while the images are listed
        Result<std::vector<LoaderSample>> list
            = samples ? samples() : Result<std::vector<LoaderSample>>(std::vector<LoaderSample>{});
        if (!list)
            return list.error();
        if (list->empty())
            return Error{QObject::tr("No labelled images to evaluate on")};
        const qint64 total = qint64(list->size());
        context.setProgress({0, total, true});
        Result<Classifier> classifier = Classifier::load(checkpoint, options);
        if (!classifier)
            return classifier.error();
        Evaluated evaluated;
        evaluated.notes = classifier->notes();
        context.setProgress({0, total, false});
        if (context.isCancelled())
            return context.cancelled();
        Result<Evaluation> evaluation = classifier->evaluate(
            list.value(), batchSize, 0,
            [&context](qint64 done, qint64 all) {
                context.setProgress({done, all, false});
            },
            context.cancelFlag());
        if (context.isCancelled())
            return context.cancelled();
        if (!evaluation)
            return evaluation.error();
        evaluated.evaluation = std::make_shared<const Evaluation>(std::move(evaluation).value());
        return evaluated;
    } catch (const std::exception &error) {
        return Error{QObject::tr("Evaluation failed: %1")
                         .arg(QString::fromLocal8Bit(error.what()).section(u'\n', 0, 0))};
    }
}

} // namespace ifs
