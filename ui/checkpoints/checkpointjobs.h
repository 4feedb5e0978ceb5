#pragma once

#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointrepair.h"
#include "checkpoint/checkpointsummary.h"
#include "checkpoint/checkpointvalue.h"
#include "common/backgroundjob.h"

#include <QList>
#include <QMap>
#include <QObject>
#include <QString>
#include <QStringList>

#include <optional>

namespace ifs {

using TensorTally = ckpt::TensorTally;

/// A checkpoint as the workspace shows it.
struct LoadedCheckpoint
{
    QString path; ///< empty for a value made in the app (a repaired checkpoint)
    QString label; ///< the file name, or "name (repaired)"
    qint64 fileSize = 0;
    ckpt::CheckpointFile file; ///< read with the saved locations kept
    ckpt::TensorTotals totals;
    /// Where torch.load would put the storages on this machine: "Saved on cuda:0; this machine
    /// has no CUDA device: torch.load needs map_location="cpu" (loaded on the CPU here)".
    QStringList deviceNotes;
    double milliseconds = 0.0;
};

/// Two checkpoints' state dicts compared.
struct CheckpointComparison
{
    QString labelA, labelB;
    QString pathA, pathB; ///< keyPathText() of the state dicts compared
    ckpt::StateDictDiff diff;
};

/// Reads one file off the GUI thread (as CheckpointOpenJob) and loads it.
LoadedCheckpoint loadCheckpointFile(const QString &path, const ckpt::CheckpointFile &file,
                                    const QStringList &availableDevices);

/// Reads checkpoint files on the global thread pool and compares them when there are two or
/// more (the first with the second). Each start() ends with exactly one of finished(), failed()
/// or cancelled(); a new start() supersedes a running one, which then reports nothing.
class CheckpointOpenJob : public QObject
{
    Q_OBJECT

public:
    explicit CheckpointOpenJob(QObject *parent = nullptr);
    ~CheckpointOpenJob() override;

    /// `availableDevices` are the CUDA devices here ("cuda:0"), for the device notes.
    void start(const QStringList &paths, const QStringList &availableDevices);
    void requestCancel();
    bool isRunning() const;

Q_SIGNALS:
    /// "Reading resnet18.pt (2 of 3)…"; at most ~10 Hz.
    void progressChanged(int done, int total, const QString &text);
    void finished(const QList<ifs::LoadedCheckpoint> &checkpoints,
                  const std::optional<ifs::CheckpointComparison> &comparison);
    void failed(const QString &message);
    void cancelled();

private:
    struct Progress
    {
        int done = 0;
        int total = 0;
        QString text;
    };
    struct Opened
    {
        QList<LoadedCheckpoint> checkpoints;
        std::optional<CheckpointComparison> comparison;
    };

    /// The work, on the worker thread.
    static Result<Opened> open(const QStringList &paths, const QStringList &availableDevices,
                               JobContext<Progress> &context);

    BackgroundJob<Opened, Progress> m_job;
};

} // namespace ifs
