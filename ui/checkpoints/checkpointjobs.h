#pragma once

#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointrepair.h"
#include "checkpoint/checkpointsummary.h"
#include "checkpoint/checkpointvalue.h"

#include <QFutureWatcher>
#include <QList>
#include <QMap>
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>
#include <optional>

namespace ifs {

/// What a checkpoint holds, counted once off the GUI thread: the core's figures, the same that
/// `ifstudio-cli inspect` prints (`bytes` are those of distinct storages).
using CheckpointTotals = ckpt::TensorTotals;
using TensorTally = ckpt::TensorTally;

/// Counts the tensors under `root` (ckpt::tensorTotals()).
CheckpointTotals countTensors(const ckpt::Value &root);

/// A checkpoint as the workspace shows it.
struct LoadedCheckpoint
{
    QString path; ///< empty for a value made in the app (a repaired checkpoint)
    QString label; ///< the file name, or "name (repaired)"
    qint64 fileSize = 0;
    ckpt::CheckpointFile file; ///< read with the saved locations kept
    CheckpointTotals totals;
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
    /// "Reading resnet18.pt (2 of 3)…"; throttled by nature (one per file).
    void progressChanged(int done, int total, const QString &text);
    void finished(const QList<ifs::LoadedCheckpoint> &checkpoints,
                  const std::optional<ifs::CheckpointComparison> &comparison);
    void failed(const QString &message);
    void cancelled();

private:
    struct Run;
    std::shared_ptr<Run> m_run;
};

/// Reads one file off the GUI thread (as CheckpointOpenJob) and loads it.
LoadedCheckpoint loadCheckpointFile(const QString &path, const ckpt::CheckpointFile &file,
                                    const QStringList &availableDevices);

/// What the Save dialog writes.
struct SaveRequest
{
    ckpt::Value value; ///< what to write (the whole file or a sub-dict)
    QList<ckpt::Operation> operations; ///< applied first (cast, device tags)
    bool orderedDict = true; ///< a top-level dict is written as an OrderedDict, else dict
    QString path;
    bool safetensors = false; ///< else torch.save's zip format
    bool verify = true; ///< re-read and compare
    /// Copy an existing file at `path` to `path.bak` before writing (an old .bak is replaced).
    bool backup = false;
};

/// Writes a checkpoint on the global thread pool: operations, backup, atomic write, verify.
/// Each start() ends with exactly one of finished(), failed() or cancelled().
class CheckpointSaveJob : public QObject
{
    Q_OBJECT

public:
    explicit CheckpointSaveJob(QObject *parent = nullptr);
    ~CheckpointSaveJob() override;

    void start(const SaveRequest &request);
    /// Stops before the write begins, or before the verification (the file is then written).
    void requestCancel();
    bool isRunning() const;

Q_SIGNALS:
    /// Steps: applying, backing up, writing, verifying.
    void progressChanged(int step, int steps, const QString &text);
    /// `notes`: what was done ("Verified: the file reads back equal", "Backup: a.pt.bak").
    void finished(const QString &path, const QStringList &notes);
    void failed(const QString &message);
    void cancelled();

private:
    struct Run;
    std::shared_ptr<Run> m_run;
};

using ckpt::computeTensorStats;
using ckpt::TensorStats;

/// Computes tensor statistics off the GUI thread, latest request wins: a superseded request
/// reports nothing; the others end with finished().
class TensorStatsJob : public QObject
{
    Q_OBJECT

public:
    explicit TensorStatsJob(QObject *parent = nullptr);
    ~TensorStatsJob() override;
    void start(const QString &key, const ckpt::Tensor &tensor);
    void cancel();

Q_SIGNALS:
    void finished(const ifs::TensorStats &stats);

private:
    struct Run;
    std::shared_ptr<Run> m_run;
};

} // namespace ifs
