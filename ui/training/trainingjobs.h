#pragma once

#include "common/backgroundjob.h"
#include "training/localranks.h"
#include "training/training.h"

#include <QList>
#include <QObject>
#include <QString>

#include <memory>

namespace ifs {

/// Runs one Trainer on a thread of the training pool and brings its callbacks to the GUI thread.
///
/// Every signal is emitted in the thread the job lives in. Step callbacks (hundreds per second
/// on small images) are buffered and delivered together at most every 100 ms by stepsReady(); an
/// epoch or the end first delivers the steps before it. A run ends with exactly one finished(),
/// emitted once the trainer has returned. Deleting the job stops a run without waiting for it:
/// the run ends after its current batch, in the background, and reports nothing.
class TrainingJob : public QObject
{
    Q_OBJECT

public:
    explicit TrainingJob(QObject *parent = nullptr);
    ~TrainingJob() override;

    /// Starts a run; false (and nothing happens) while one is running. With `processes` > 1 the
    /// run is data-parallel on this machine: this process is rank 0 and the others are
    /// `ifstudio-cli train` processes beside the app (training/localranks.h); the signals carry
    /// the figures of all of them.
    bool start(const TrainConfig &config, int processes = 1);
    bool isRunning() const;
    /// The `ifstudio-cli` that runs the other ranks of a data-parallel run (default: the one
    /// beside the application).
    void setCommandLineTool(const QString &path) { m_cli = path; }
    /// The configuration of the current or last run.
    const TrainConfig &config() const { return m_config; }

    void pause();
    void resume();
    bool isPaused() const;
    /// Ends the run after the current batch; with `saveCheckpoint` last.pth keeps the exact
    /// position inside the epoch.
    void stop(bool saveCheckpoint = false);
    bool isStopping() const { return m_stopping; }
    /// Blocks until the trainer has returned (tests); false on timeout. finished() is still
    /// emitted from the event loop afterwards.
    bool wait(int milliseconds = -1);

Q_SIGNALS:
    void started(const ifs::TrainStart &start);
    void statusChanged(const QString &text);
    /// The steps since the last delivery, in order.
    void stepsReady(const QList<ifs::StepProgress> &steps);
    void epochFinished(const ifs::EpochReport &report);
    /// pause() took effect: the run waits between batches, and every step before is delivered.
    void held();
    void finished(const ifs::TrainFinish &finish);

private:
    using Context = JobContext<QList<StepProgress>>;

    /// The work, on the worker; `job` is only captured by the calls posted to it.
    static Result<TrainFinish> train(TrainingJob *job, const std::shared_ptr<Trainer> &trainer,
                                     Context &context);
    void end(const TrainFinish &finish);

    TrainConfig m_config;
    std::shared_ptr<Trainer> m_trainer; // of the current run
    std::unique_ptr<LocalRanks> m_ranks; // the other processes of a data-parallel run
    QString m_cli;
    BackgroundJob<TrainFinish, QList<StepProgress>> m_job;
    bool m_stopping = false;
};

} // namespace ifs
