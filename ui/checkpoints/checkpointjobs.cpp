#include "checkpoints/checkpointjobs.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QSet>

namespace ifs {

using namespace ckpt;

LoadedCheckpoint loadCheckpointFile(const QString &path, const CheckpointFile &file,
                                    const QStringList &availableDevices)
{
    LoadedCheckpoint loaded;
    loaded.path = path;
    loaded.label = QFileInfo(path).fileName();
    loaded.fileSize = QFileInfo(path).size();
    loaded.file = file;
    loaded.totals = ckpt::tensorTotals(file.root);
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

/// The first two checkpoints' main state dicts compared.
Result<CheckpointComparison> compareFirstTwo(const QList<LoadedCheckpoint> &checkpoints)
{
    const LoadedCheckpoint &a = checkpoints[0];
    const LoadedCheckpoint &b = checkpoints[1];
    auto sa = mainStateDict(a.file.root);
    auto sb = mainStateDict(b.file.root);
    if (!sa || !sb) {
        return Error{QObject::tr("Cannot compare “%1” with “%2”: %3")
                         .arg(a.label, b.label,
                              !sa ? QObject::tr("“%1”: %2").arg(a.label, sa.errorMessage())
                                  : QObject::tr("“%1”: %2").arg(b.label, sb.errorMessage()))};
    }
    Result<StateDictDiff> diff = diffStateDicts(sa->second, sb->second);
    if (!diff) {
        return Error{QObject::tr("Cannot compare “%1” with “%2”: %3")
                         .arg(a.label, b.label, diff.errorMessage())};
    }
    return CheckpointComparison{a.label, b.label, keyPathText(sa->first), keyPathText(sb->first),
                                diff.value()};
}

} // namespace

CheckpointOpenJob::CheckpointOpenJob(QObject *parent)
    : QObject(parent)
{
    m_job.onProgress([this](const Progress &progress) {
        Q_EMIT progressChanged(progress.done, progress.total, progress.text);
    });
    m_job.onFinished(
        [this](const Opened &opened) { Q_EMIT finished(opened.checkpoints, opened.comparison); });
    m_job.onFailed([this](const Error &error) { Q_EMIT failed(error.message); });
    m_job.onCancelled([this] { Q_EMIT cancelled(); });
}

CheckpointOpenJob::~CheckpointOpenJob() = default;

bool CheckpointOpenJob::isRunning() const
{
    return m_job.isRunning();
}

void CheckpointOpenJob::requestCancel()
{
    m_job.requestCancel();
}

void CheckpointOpenJob::start(const QStringList &paths, const QStringList &availableDevices)
{
    m_job.start([paths, availableDevices](JobContext<Progress> &context) {
        return open(paths, availableDevices, context);
    });
}

auto CheckpointOpenJob::open(const QStringList &paths, const QStringList &availableDevices,
                             JobContext<Progress> &context) -> Result<Opened>
{
    Opened opened;
    try {
        for (int i = 0; i < paths.size(); ++i) {
            if (context.isCancelled())
                return context.cancelled();
            const QString name = QFileInfo(paths[i]).fileName();
            context.updateProgress([&](Progress &progress) {
                progress.total = int(paths.size());
                progress.text = paths.size() > 1
                    ? QObject::tr("Reading %1 (%2 of %3)…").arg(name).arg(i + 1).arg(paths.size())
                    : QObject::tr("Reading %1…").arg(name);
            });
            QElapsedTimer clock;
            clock.start();
            ReadOptions options;
            options.map = MapLocation::keep(); // the tree shows the saved locations
            options.cancel = context.cancelFlag();
            // The tree needs no tensor data: each storage is read when something asks for it
            // (statistics, Load into Model, Save As), on a worker thread.
            options.tensorData = ReadOptions::TensorData::OnDemand;
            Result<CheckpointFile> file = readCheckpoint(paths[i], options);
            if (context.isCancelled())
                return context.cancelled();
            if (!file)
                return file.error();
            LoadedCheckpoint loaded = loadCheckpointFile(paths[i], file.value(), availableDevices);
            loaded.milliseconds = double(clock.nsecsElapsed()) / 1e6;
            opened.checkpoints.append(std::move(loaded));
            context.updateProgress([&](Progress &progress) { progress.done = i + 1; });
        }
        if (opened.checkpoints.size() >= 2) {
            Result<CheckpointComparison> comparison = compareFirstTwo(opened.checkpoints);
            if (!comparison)
                return comparison.error();
            opened.comparison = std::move(comparison).value();
        }
    } catch (const std::exception &e) {
        return Error{
            QObject::tr("Cannot read the checkpoint: %1").arg(QString::fromLocal8Bit(e.what()))};
    }
    return opened;
}

} // namespace ifs
