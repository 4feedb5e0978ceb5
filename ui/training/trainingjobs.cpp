#include "training/trainingjobs.h"

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QDir>
#include <QTimer>

#include <exception>
#include <optional>

namespace ifs {

namespace {

TrainFinish failedFinish(const QString &message)
{
    TrainFinish finish;
    finish.outcome = TrainOutcome::Failed;
    finish.message = message;
    return finish;
}

} // namespace

TrainingJob::TrainingJob(QObject *parent)
    : QObject(parent)
    , m_job(nullptr, ProgressMode::Drain)
{
    // A run holds its thread for hours: not one of the global pool's few.
    m_job.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-training"), 4));
    m_job.onProgress([this](const QList<StepProgress> &steps) {
        if (!steps.isEmpty())
            Q_EMIT stepsReady(steps);
    });
    m_job.onFinished([this](const TrainFinish &finish) { end(finish); });
    m_job.onFailed([this](const Error &error) { end(failedFinish(error.message)); });
    m_job.onCancelled([this] { end(failedFinish(tr("Training ended without saying how"))); });
}

TrainingJob::~TrainingJob()
{
    // The run ends after its current batch, on its own thread; m_job drops it.
    if (isRunning())
        m_trainer->stop(false);
}

bool TrainingJob::isRunning() const
{
    return m_job.isRunning();
}

bool TrainingJob::start(const TrainConfig &config, int processes)
{
    if (isRunning())
        return false;
    m_config = config;
    m_stopping = false;
    m_ranks.reset();
    if (processes > 1) {
        const QString cli = !m_cli.isEmpty()
            ? m_cli
            : QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("ifstudio-cli"));
        auto ranks = LocalRanks::start(m_config, processes, cli);
        if (!ranks) {
            const QString message = ranks.errorMessage();
            QTimer::singleShot(0, this, [this, message] { end(failedFinish(message)); });
            return true;
        }
        m_ranks = std::move(ranks).value();
        m_config.distributed = m_ranks->rankZero();
    }
    auto trainer = std::make_shared<Trainer>(m_config);
    m_trainer = trainer;
    m_job.start([this, trainer](Context &context) { return train(this, trainer, context); });
    return true;
}

Result<TrainFinish> TrainingJob::train(TrainingJob *job, const std::shared_ptr<Trainer> &trainer,
                                       Context &context)
{
    // The callbacks only post to the context, which drops what it holds with the run.
    TrainCallbacks callbacks;
    callbacks.started = [job, &context](const TrainStart &start) {
        context.post([job, start] { Q_EMIT job->started(start); });
    };
    callbacks.status = [job, &context](const QString &text) {
        context.post([job, text] { Q_EMIT job->statusChanged(text); });
    };
    callbacks.step = [&context](const StepProgress &progress) {
        context.updateProgress([&progress](QList<StepProgress> &steps) { steps.append(progress); });
    };
    // Posted: the epoch's last steps are delivered before it.
    callbacks.epoch = [job, &context](const EpochReport &report) {
        context.post([job, report] { Q_EMIT job->epochFinished(report); });
    };
    callbacks.held = [job, &context] {
        context.post([job] { Q_EMIT job->held(); });
    };
    std::optional<TrainFinish> finish;
    callbacks.finished = [&finish](const TrainFinish &done) {
        finish = done;
    };
    // Trainer::run is the exception boundary; this is the last line of defence.
    try {
        trainer->run(callbacks);
    } catch (const std::exception &error) {
        if (!finish)
            finish = failedFinish(
                QObject::tr("Training failed: %1").arg(QString::fromLocal8Bit(error.what())));
    } catch (...) {
        if (!finish)
            finish = failedFinish(QObject::tr("Training failed with an unknown error"));
    }
    if (!finish)
        finish = failedFinish(tr("Training ended without saying how"));
    return *finish;
}

void TrainingJob::end(const TrainFinish &finish)
{
    m_stopping = false;
    TrainFinish result = finish;
    if (m_ranks) {
        // The other ranks end with rank 0; one that does not (it never joined, say) is killed.
        m_ranks->finish(finish.outcome == TrainOutcome::Completed ? 10000 : 2000);
        if (const QString why = m_ranks->failures(); !why.isEmpty())
            result.message += QStringLiteral("\n") + why;
        m_ranks.reset();
    }
    Q_EMIT finished(result);
}

void TrainingJob::pause()
{
    if (isRunning())
        m_trainer->pause();
}

void TrainingJob::resume()
{
    if (isRunning())
        m_trainer->resume();
}

bool TrainingJob::isPaused() const
{
    return isRunning() && m_trainer->isPaused();
}

void TrainingJob::stop(bool saveCheckpoint)
{
    if (!isRunning())
        return;
    m_stopping = true;
    m_trainer->stop(saveCheckpoint);
}

bool TrainingJob::wait(int milliseconds)
{
    return m_job.waitForWorker(milliseconds < 0 ? QDeadlineTimer(QDeadlineTimer::Forever)
                                                : QDeadlineTimer(milliseconds));
}

} // namespace ifs
