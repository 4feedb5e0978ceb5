// The run folder's lock and the clean-up of interrupted writes (see runfolder.h).

#include "training/runfolder.h"

#include "base/atomicfile.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QLockFile>
#include <QRegularExpression>

namespace ifs {

namespace {

/// Who holds (or held) a lock file, as QLockFile wrote it, and since when.
struct LockHolder
{
    bool known = false;
    qint64 pid = 0;
    QString host;
    QString program;
    QDateTime since;

    QString describe() const
    {
        if (!known)
            return QStringLiteral("a process whose lock file cannot be read");
        return QStringLiteral("%1 (process %2 on “%3”, since %4)")
            .arg(program.isEmpty() ? QStringLiteral("a program") : program)
            .arg(pid)
            .arg(host, since.toString(QStringLiteral("yyyy-MM-dd HH:mm:ss")));
    }
};

LockHolder readHolder(const QString &path)
{
    LockHolder holder;
    if (!QFileInfo::exists(path))
        return holder;
    QLockFile reader(path);
    holder.known = reader.getLockInfo(&holder.pid, &holder.host, &holder.program);
    holder.since = QFileInfo(path).lastModified(); // written once, when the lock was taken
    return holder;
}

/// A QSaveFile temporary's six random letters, told from a word a user may have chosen: those
/// in one case throughout or capitalised ("backup", "OLDEST", "Backup") are left alone. About 5%
/// of real temporaries look like that and stay, which is the safe side.
bool looksRandom(QStringView letters)
{
    int upper = 0;
    for (QChar c : letters)
        upper += c.isUpper() ? 1 : 0;
    const bool capitalised = upper == 1 && letters.front().isUpper();
    return upper > 0 && upper < letters.size() && !capitalised;
}

} // namespace

RunFolderLock::RunFolderLock() = default;

RunFolderLock::~RunFolderLock()
{
    release();
}

QString RunFolderLock::fileName()
{
    return QStringLiteral(".ifstudio-run.lock");
}

Status RunFolderLock::acquire(const QString &folder)
{
    release();
    const QString path = QDir(folder).filePath(fileName());
    const LockHolder previous = readHolder(path);
    auto lock = std::make_unique<QLockFile>(path);
    // Only a dead holder makes a lock stale, never its age: runs take days.
    lock->setStaleLockTime(0);
    if (lock->tryLock(0)) {
        if (previous.known)
            m_takeOverNote = QStringLiteral("Took over the run folder's lock from %1, which is "
                                            "no longer running")
                                 .arg(previous.describe());
        m_lock = std::move(lock);
        return success();
    }
    const QString where = QDir::toNativeSeparators(folder);
    if (lock->error() != QLockFile::LockFailedError)
        return Error{
            QStringLiteral("cannot lock the run folder “%1”: %2")
                .arg(where,
                     lock->error() == QLockFile::PermissionError
                         ? QStringLiteral("permission denied")
                         : QStringLiteral("its lock file “%1” cannot be created").arg(fileName())),
            ErrorCode::Io};
    return Error{QStringLiteral("the run folder “%1” is in use by another training run: %2. Wait "
                                "for that run to end (or stop it), or choose another run folder. "
                                "If no run uses it (one on another machine that is gone), delete "
                                "“%3”.")
                     .arg(where, readHolder(path).describe(), QDir::toNativeSeparators(path))};
}

void RunFolderLock::release()
{
    if (m_lock)
        m_lock->unlock();
    m_lock.reset();
    m_takeOverNote.clear();
}

bool RunFolderLock::isLocked() const
{
    return m_lock && m_lock->isLocked();
}

QStringList removeStaleTemporaries(const QString &folder)
{
    // The run's own files, then what a writer of ours appends to their names.
    static const QRegularExpression ours(
        QStringLiteral("^(config\\.json|metrics\\.csv|steps\\.csv|load_model\\.py|last\\.pth|"
                       "best\\.pth|epoch_\\d{3,}\\.pth)\\.(.+)$"));
    static const QRegularExpression partial(QStringLiteral("^part-[0-9a-z]{1,13}$"));
    static const QRegularExpression saveFile(QStringLiteral("^[A-Za-z]{6}$"));
    QStringList removed;
    QDir dir(folder);
    const QFileInfoList entries
        = dir.entryInfoList(QDir::Files | QDir::Hidden | QDir::NoSymLinks, QDir::Name);
    for (const QFileInfo &entry : entries) {
        const QString name = entry.fileName();
        const QRegularExpressionMatch match = ours.match(name);
        if (!match.hasMatch())
            continue;
        const QString target = match.captured(1);
        const QString suffix = match.captured(2);
        const bool temporary = isAtomicWriteTemporary(name, target)
            || partial.match(suffix).hasMatch()
            || (saveFile.match(suffix).hasMatch() && looksRandom(suffix));
        if (temporary && dir.remove(name))
            removed.append(name);
    }
    return removed;
}

} // namespace ifs
