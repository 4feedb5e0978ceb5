#include "checkpoints/checkpointjobs.h"

#include "checkpoint/checkpointwriter.h"
#include "checkpoint/safetensors.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QMutex>
#include <QMutexLocker>
#include <QSet>
#include <QTimer>
#include <QtConcurrent>

#include <cmath>
#include <cstring>
#include <limits>

namespace ifs {

using namespace ckpt;

// ------------------------------------------------------------------------------------------------
// Totals

CheckpointTotals countTensors(const Value &root)
{
    return tensorTotals(root);
}

LoadedCheckpoint loadCheckpointFile(const QString &path, const CheckpointFile &file,
                                    const QStringList &availableDevices)
{
    LoadedCheckpoint loaded;
    loaded.path = path;
    loaded.label = QFileInfo(path).fileName();
    loaded.fileSize = QFileInfo(path).size();
    loaded.file = file;
    loaded.totals = countTensors(file.root);
    const MapLocation automatic = MapLocation::automatic(availableDevices);
    for (const QString &saved : file.savedLocations()) {
        QString moved;
        const QString target = automatic.target(saved, &moved);
        if (target != saved) {
            loaded.deviceNotes.append(
                QObject::tr("Saved on %1, loaded on the %2 here: this machine has no %1, so "
                            "torch.load needs map_location=\"%3\".")
                    .arg(saved, target == u"cpu" ? QObject::tr("CPU") : target, target));
        }
    }
    return loaded;
}

// ------------------------------------------------------------------------------------------------
// Open

namespace {

struct OpenOutcome
{
    QList<LoadedCheckpoint> checkpoints;
    std::optional<CheckpointComparison> comparison;
    QString error;
    bool cancelled = false;
};

Result<std::pair<KeyPath, Value>> mainStateDict(const Value &root)
{
    const QList<StateDictCandidate> candidates = findStateDicts(root);
    if (candidates.isEmpty())
        return Error{QObject::tr("it holds no dict of tensors")};
    Result<Value> value = valueAt(root, candidates.constFirst().path);
    if (!value)
        return value.error();
    return std::make_pair(candidates.constFirst().path, value.value());
}

} // namespace

struct CheckpointOpenJob::Run
{
    std::atomic_bool cancel{false};
    std::atomic<int> done{0};
    int total = 0;
    QMutex mutex;
    QString text;
    QFutureWatcher<OpenOutcome> *watcher = nullptr;
    QTimer *timer = nullptr;
};

CheckpointOpenJob::CheckpointOpenJob(QObject *parent)
    : QObject(parent)
{ }

CheckpointOpenJob::~CheckpointOpenJob()
{
    if (m_run)
        m_run->cancel = true;
}

bool CheckpointOpenJob::isRunning() const
{
    return m_run && m_run->watcher && m_run->watcher->isRunning();
}

void CheckpointOpenJob::requestCancel()
{
    if (m_run)
        m_run->cancel = true;
}

void CheckpointOpenJob::start(const QStringList &paths, const QStringList &availableDevices)
{
    if (m_run) {
        // Superseded: it stops at its next check and reports nothing.
        m_run->cancel = true;
        m_run->watcher->disconnect(this);
        m_run->timer->stop();
        m_run->watcher->deleteLater();
        m_run->timer->deleteLater();
    }
    auto run = std::make_shared<Run>();
    run->total = int(paths.size());
    m_run = run;
    run->watcher = new QFutureWatcher<OpenOutcome>(this);
    run->timer = new QTimer(this);
    run->timer->setInterval(100);
    connect(run->timer, &QTimer::timeout, this, [this, run] {
        QString text;
        {
            QMutexLocker lock(&run->mutex);
            text = run->text;
        }
        Q_EMIT progressChanged(run->done.load(), run->total, text);
    });
    connect(run->watcher, &QFutureWatcher<OpenOutcome>::finished, this, [this, run] {
        run->timer->stop();
        run->timer->deleteLater();
        run->watcher->deleteLater();
        if (m_run == run)
            m_run.reset();
        const OpenOutcome outcome = run->watcher->result();
        if (outcome.cancelled)
            Q_EMIT cancelled();
        else if (!outcome.error.isEmpty())
            Q_EMIT failed(outcome.error);
        else
            Q_EMIT finished(outcome.checkpoints, outcome.comparison);
    });
    run->watcher->setFuture(QtConcurrent::run([run, paths, availableDevices] {
        OpenOutcome outcome;
        try {
            for (int i = 0; i < paths.size(); ++i) {
                if (run->cancel) {
                    outcome.cancelled = true;
                    return outcome;
                }
                {
                    QMutexLocker lock(&run->mutex);
                    run->text = paths.size() > 1
                        ? QObject::tr("Reading %1 (%2 of %3)…")
                              .arg(QFileInfo(paths[i]).fileName())
                              .arg(i + 1)
                              .arg(paths.size())
                        : QObject::tr("Reading %1…").arg(QFileInfo(paths[i]).fileName());
                }
                QElapsedTimer clock;
                clock.start();
                ReadOptions options;
                options.map = MapLocation::keep(); // the tree shows the saved locations
                options.cancel = &run->cancel;
                Result<CheckpointFile> file = readCheckpoint(paths[i], options);
                if (run->cancel) {
                    outcome.cancelled = true;
                    return outcome;
                }
                if (!file) {
                    outcome.error = file.errorMessage();
                    return outcome;
                }
                LoadedCheckpoint loaded
                    = loadCheckpointFile(paths[i], file.value(), availableDevices);
                loaded.milliseconds = double(clock.nsecsElapsed()) / 1e6;
                outcome.checkpoints.append(std::move(loaded));
                run->done = i + 1;
            }
            if (outcome.checkpoints.size() >= 2) {
                const LoadedCheckpoint &a = outcome.checkpoints[0];
                const LoadedCheckpoint &b = outcome.checkpoints[1];
                auto sa = mainStateDict(a.file.root);
                auto sb = mainStateDict(b.file.root);
                if (!sa || !sb) {
                    outcome.error
                        = QObject::tr("Cannot compare “%1” with “%2”: %3")
                              .arg(a.label, b.label,
                                   !sa ? QObject::tr("“%1”: %2").arg(a.label, sa.errorMessage())
                                       : QObject::tr("“%1”: %2").arg(b.label, sb.errorMessage()));
                    return outcome;
                }
                Result<StateDictDiff> diff = diffStateDicts(sa->second, sb->second);
                if (!diff) {
                    outcome.error = QObject::tr("Cannot compare “%1” with “%2”: %3")
                                        .arg(a.label, b.label, diff.errorMessage());
                    return outcome;
                }
                outcome.comparison = CheckpointComparison{a.label, b.label, keyPathText(sa->first),
                                                          keyPathText(sb->first), diff.value()};
            }
        } catch (const std::exception &e) {
            outcome.error = QObject::tr("Cannot read the checkpoint: %1")
                                .arg(QString::fromLocal8Bit(e.what()));
        }
        return outcome;
    }));
    run->timer->start();
}

// ------------------------------------------------------------------------------------------------
// Save

namespace {

struct SaveOutcome
{
    QStringList notes;
    QString error;
    bool cancelled = false;
};

/// Whether two flat state dicts hold the same tensors (safetensors keeps no devices, flags or
/// sharing, so Value's equality is too strict for it).
QString compareTensorDicts(const Value &written, const Value &read)
{
    if (written.size() != read.size())
        return QObject::tr("%1 entries written, %2 read back").arg(written.size()).arg(read.size());
    for (qsizetype i = 0; i < written.size(); ++i) {
        const Value::Entry &w = written.entries()[i];
        const Value::Entry &r = read.entries()[i];
        const QString key = w.first.toString();
        if (key != r.first.toString())
            return QObject::tr("key %1 reads back as %2").arg(key, r.first.toString());
        const Tensor a = w.second.toTensor();
        const Tensor b = r.second.toTensor();
        if (a.dtype() != b.dtype() || a.shape != b.shape)
            return QObject::tr("“%1” reads back with another dtype or shape").arg(key);
        const Result<QByteArray> ba = a.contiguousBytes();
        const Result<QByteArray> bb = b.contiguousBytes();
        if (!ba || !bb || ba.value() != bb.value())
            return QObject::tr("“%1” reads back with other values").arg(key);
    }
    return {};
}

} // namespace

struct CheckpointSaveJob::Run
{
    std::atomic_bool cancel{false};
    std::atomic<int> step{0};
    int steps = 4;
    QMutex mutex;
    QString text;
    QFutureWatcher<SaveOutcome> *watcher = nullptr;
    QTimer *timer = nullptr;

    void setStep(int value, const QString &message)
    {
        QMutexLocker lock(&mutex);
        step = value;
        text = message;
    }
};

CheckpointSaveJob::CheckpointSaveJob(QObject *parent)
    : QObject(parent)
{ }

CheckpointSaveJob::~CheckpointSaveJob()
{
    if (m_run)
        m_run->cancel = true;
}

bool CheckpointSaveJob::isRunning() const
{
    return m_run && m_run->watcher && m_run->watcher->isRunning();
}

void CheckpointSaveJob::requestCancel()
{
    if (m_run)
        m_run->cancel = true;
}

void CheckpointSaveJob::start(const SaveRequest &request)
{
    if (isRunning())
        return; // one save at a time; the dialog disables its button meanwhile
    auto run = std::make_shared<Run>();
    m_run = run;
    run->watcher = new QFutureWatcher<SaveOutcome>(this);
    run->timer = new QTimer(this);
    run->timer->setInterval(100);
    auto report = [this, run] {
        QString text;
        {
            QMutexLocker lock(&run->mutex);
            text = run->text;
        }
        Q_EMIT progressChanged(run->step.load(), run->steps, text);
    };
    connect(run->timer, &QTimer::timeout, this, report);
    connect(run->watcher, &QFutureWatcher<SaveOutcome>::finished, this, [this, run] {
        run->timer->stop();
        run->timer->deleteLater();
        run->watcher->deleteLater();
        if (m_run == run)
            m_run.reset();
        const SaveOutcome outcome = run->watcher->result();
        if (outcome.cancelled)
            Q_EMIT cancelled();
        else if (!outcome.error.isEmpty())
            Q_EMIT failed(outcome.error);
        else
            Q_EMIT finished(run->text, outcome.notes);
    });
    run->watcher->setFuture(QtConcurrent::run([run, request] {
        SaveOutcome outcome;
        const QString name = QFileInfo(request.path).fileName();
        try {
            run->setStep(0, QObject::tr("Preparing…"));
            Value value = request.value;
            if (!request.operations.isEmpty()) {
                Result<RepairResult> applied = applyOperations(value, request.operations);
                if (!applied) {
                    outcome.error
                        = QObject::tr("Cannot save “%1”: %2").arg(name, applied.errorMessage());
                    return outcome;
                }
                value = applied->value;
                for (const OperationReport &step : applied->steps)
                    outcome.notes.append(step.summary);
            }
            if (value.isDict() && value.isOrderedDict() != request.orderedDict) {
                value = request.orderedDict ? Value::orderedDict(value.entries(), value.state())
                                            : Value::dict(value.entries());
            }
            if (run->cancel) {
                outcome.cancelled = true;
                return outcome;
            }
            if (request.backup && QFileInfo::exists(request.path)) {
                run->setStep(1, QObject::tr("Keeping a backup…"));
                const QString backup = request.path + QStringLiteral(".bak");
                QFile::remove(backup);
                if (!QFile::copy(request.path, backup)) {
                    outcome.error = QObject::tr("Cannot keep a backup of “%1” as “%2”: the copy "
                                                "failed; nothing was written")
                                        .arg(name, QFileInfo(backup).fileName());
                    return outcome;
                }
                outcome.notes.append(QObject::tr("The previous file is kept as “%1”.")
                                         .arg(QFileInfo(backup).fileName()));
            }
            run->setStep(2, QObject::tr("Writing %1…").arg(name));
            QStringList writeNotes;
            const Status written = request.safetensors
                ? writeSafetensors(request.path, value, {}, &writeNotes)
                : writeCheckpoint(request.path, value);
            if (!written) {
                outcome.error = written.errorMessage();
                return outcome;
            }
            outcome.notes += writeNotes;
            if (request.verify) {
                if (run->cancel) {
                    outcome.notes.append(QObject::tr("Written; not verified (cancelled)."));
                    run->setStep(4, request.path);
                    return outcome;
                }
                run->setStep(3, QObject::tr("Verifying %1…").arg(name));
                ReadOptions options;
                options.map = MapLocation::keep();
                Result<CheckpointFile> back = readCheckpoint(request.path, options);
                if (!back) {
                    outcome.error = QObject::tr("“%1” was written but does not read back: %2")
                                        .arg(name, back.errorMessage());
                    return outcome;
                }
                const QString difference = request.safetensors
                    ? compareTensorDicts(value, back->root)
                    : (back->root == value ? QString()
                                           : QObject::tr("the value read differs from the one "
                                                         "written"));
                if (!difference.isEmpty()) {
                    outcome.error = QObject::tr("“%1” was written but does not read back "
                                                "equal: %2")
                                        .arg(name, difference);
                    return outcome;
                }
                outcome.notes.append(QObject::tr("Verified: “%1” reads back equal.").arg(name));
            }
        } catch (const std::exception &e) {
            outcome.error
                = QObject::tr("Cannot save “%1”: %2").arg(name, QString::fromLocal8Bit(e.what()));
            return outcome;
        }
        run->setStep(4, request.path);
        return outcome;
    }));
    run->timer->start();
    report();
}

// ------------------------------------------------------------------------------------------------
// Tensor statistics

struct TensorStatsJob::Run
{
    std::atomic_bool cancel{false};
    QFutureWatcher<TensorStats> *watcher = nullptr;
};

TensorStatsJob::TensorStatsJob(QObject *parent)
    : QObject(parent)
{ }

TensorStatsJob::~TensorStatsJob()
{
    cancel();
}

void TensorStatsJob::cancel()
{
    if (!m_run)
        return;
    m_run->cancel = true;
    m_run->watcher->disconnect(this);
    m_run->watcher->deleteLater();
    m_run.reset();
}

void TensorStatsJob::start(const QString &key, const Tensor &tensor)
{
    cancel();
    auto run = std::make_shared<Run>();
    m_run = run;
    run->watcher = new QFutureWatcher<TensorStats>(this);
    connect(run->watcher, &QFutureWatcher<TensorStats>::finished, this, [this, run] {
        run->watcher->deleteLater();
        if (m_run == run)
            m_run.reset();
        Q_EMIT finished(run->watcher->result());
    });
    run->watcher->setFuture(QtConcurrent::run([run, key, tensor] {
        TensorStats stats = computeTensorStats(tensor, &run->cancel);
        stats.key = key;
        return stats;
    }));
}

} // namespace ifs
