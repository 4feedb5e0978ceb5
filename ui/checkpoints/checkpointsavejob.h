#pragma once

#include "checkpoint/checkpointrepair.h"
#include "checkpoint/checkpointvalue.h"
#include "common/backgroundjob.h"

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

namespace ifs {

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

    /// Ignored while a save runs (the dialog disables its button meanwhile).
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
    static constexpr int kSteps = 4;

    struct Progress
    {
        int step = 0;
        QString text;
    };
    struct Saved
    {
        QString path;
        QStringList notes;
    };

    /// The work, on the worker thread.
    static Result<Saved> save(const SaveRequest &request, JobContext<Progress> &context);

    BackgroundJob<Saved, Progress> m_job;
};

} // namespace ifs
