#include "checkpoints/checkpointsavejob.h"

#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointwriter.h"
#include "checkpoint/safetensors.h"

#include <QFile>
#include <QFileInfo>

#include <exception>

namespace ifs {

using namespace ckpt;

namespace {

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

/// The value to write: the request's operations applied (their summaries go to `notes`), the
/// top-level dict made the kind asked for.
Result<Value> preparedValue(const SaveRequest &request, const QString &name, QStringList &notes)
{
    Value value = request.value;
    if (!request.operations.isEmpty()) {
        Result<RepairResult> applied = applyOperations(value, request.operations);
        if (!applied)
            return Error{QObject::tr("Cannot save “%1”: %2").arg(name, applied.errorMessage())};
        value = applied->value;
        for (const OperationReport &step : applied->steps)
            notes.append(step.summary);
    }
    if (value.isDict() && value.isOrderedDict() != request.orderedDict) {
        value = request.orderedDict ? Value::orderedDict(value.entries(), value.state())
                                    : Value::dict(value.entries());
    }
    return value;
}

/// Copies the file at the request's path to "<path>.bak"; an old backup is replaced.
Status keepBackup(const SaveRequest &request, const QString &name, QStringList &notes)
{
    const QString backup = request.path + QStringLiteral(".bak");
    QFile::remove(backup);
    if (!QFile::copy(request.path, backup)) {
        return Error{QObject::tr("Cannot keep a backup of “%1” as “%2”: the copy failed; "
                                 "nothing was written")
                         .arg(name, QFileInfo(backup).fileName()),
                     ErrorCode::Io};
    }
    notes.append(
        QObject::tr("The previous file is kept as “%1”.").arg(QFileInfo(backup).fileName()));
    return success();
}

/// Reads the written file back and compares it with `value`.
Status verifyWritten(const SaveRequest &request, const QString &name, const Value &value)
{
    ReadOptions options;
    options.map = MapLocation::keep();
    Result<CheckpointFile> back = readCheckpoint(request.path, options);
    if (!back) {
        return Error{QObject::tr("“%1” was written but does not read back: %2")
                         .arg(name, back.errorMessage())};
    }
    const QString difference = request.safetensors
        ? compareTensorDicts(value, back->root)
        : (back->root == value ? QString()
                               : QObject::tr("the value read differs from the one written"));
    if (!difference.isEmpty()) {
        return Error{
            QObject::tr("“%1” was written but does not read back equal: %2").arg(name, difference)};
    }
    return success();
}

} // namespace

CheckpointSaveJob::CheckpointSaveJob(QObject *parent)
    : QObject(parent)
{
    m_job.onProgress([this](const Progress &progress) {
        Q_EMIT progressChanged(progress.step, kSteps, progress.text);
    });
    m_job.onFinished([this](const Saved &saved) { Q_EMIT finished(saved.path, saved.notes); });
    m_job.onFailed([this](const Error &error) { Q_EMIT failed(error.message); });
    m_job.onCancelled([this] { Q_EMIT cancelled(); });
}

CheckpointSaveJob::~CheckpointSaveJob() = default;

bool CheckpointSaveJob::isRunning() const
{
    return m_job.isRunning();
}

void CheckpointSaveJob::requestCancel()
{
    m_job.requestCancel();
}

void CheckpointSaveJob::start(const SaveRequest &request)
{
    if (isRunning())
        return;
    m_job.start([request](JobContext<Progress> &context) { return save(request, context); });
    Q_EMIT progressChanged(0, kSteps, tr("Preparing…"));
}

auto CheckpointSaveJob::save(const SaveRequest &request, JobContext<Progress> &context)
    -> Result<Saved>
{
    Saved saved{request.path, {}};
    const QString name = QFileInfo(request.path).fileName();
    try {
        context.setProgress({0, QObject::tr("Preparing…")});
        const Result<Value> value = preparedValue(request, name, saved.notes);
        if (!value)
            return value.error();
        if (context.isCancelled())
            return context.cancelled();
        if (request.backup && QFileInfo::exists(request.path)) {
            context.setProgress({1, QObject::tr("Keeping a backup…")});
            if (const Status kept = keepBackup(request, name, saved.notes); !kept)
                return kept.error();
        }
        context.setProgress({2, QObject::tr("Writing %1…").arg(name)});
        QStringList writeNotes;
        const Status written = request.safetensors
            ? writeSafetensors(request.path, value.value(), {}, &writeNotes)
            : writeCheckpoint(request.path, value.value());
        if (!written)
            return written.error();
        saved.notes += writeNotes;
        if (!request.verify)
            return saved;
        if (context.isCancelled()) {
            // Written already: the save succeeded, only the check was skipped.
            saved.notes.append(QObject::tr("Written; not verified (cancelled)."));
            return saved;
        }
        context.setProgress({3, QObject::tr("Verifying %1…").arg(name)});
        if (const Status verified = verifyWritten(request, name, value.value()); !verified)
            return verified.error();
        saved.notes.append(QObject::tr("Verified: “%1” reads back equal.").arg(name));
    } catch (const std::exception &e) {
        return Error{
            QObject::tr("Cannot save “%1”: %2").arg(name, QString::fromLocal8Bit(e.what()))};
    }
    return saved;
}

} // namespace ifs
