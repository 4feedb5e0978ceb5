#pragma once

// One run at a time in a run folder: its lock, held while a run writes there (the GUI's and
// the CLI's alike, through Trainer), and the temporary files that our writers leave behind
// when a process is killed in the middle of a write.

#include "base/result.h"

#include <QString>
#include <QStringList>

#include <memory>

class QLockFile;

namespace ifs {

/// The lock of a run folder: a QLockFile named RunFolderLock::fileName() in it, which records
/// the process id, the program and the host of its holder. Released when the object goes.
class RunFolderLock
{
public:
    RunFolderLock();
    ~RunFolderLock();
    RunFolderLock(const RunFolderLock &) = delete;
    RunFolderLock &operator=(const RunFolderLock &) = delete;

    /// ".ifstudio-run.lock"
    static QString fileName();

    /// Locks the existing folder `folder`. Fails when another run holds it (in another process
    /// or in this one) with a message that names the holder: its program, process id, host and
    /// since when, and what to do. A lock whose process is gone (same host) is taken over, and
    /// takeOverNote() says so.
    Status acquire(const QString &folder);
    /// Gives the lock up (also done by the destructor).
    void release();
    bool isLocked() const;

    /// After acquire(): "Took over the lock of ifstudio-cli-train (process 123 on “box”, since
    /// …), which is no longer running", or empty when the folder was free.
    QString takeOverNote() const { return m_takeOverNote; }

private:
    std::unique_ptr<QLockFile> m_lock;
    QString m_takeOverNote;
};

/// Removes the temporary files that our writers leave in a run folder when a process is killed
/// while writing one of the run's files (config.json, metrics.csv, steps.csv, load_model.py,
/// last.pth, best.pth, epoch_NNN.pth): writeFileAtomically()'s "<file>.XXXXXX.tmp", the
/// checkpoint writer's "<file>.part-<tag>" and QSaveFile's "<file>.XXXXXX" (six random letters;
/// a suffix that reads as a word, such as “backup” or “Backup”, is taken for a user's file and
/// kept). Nothing else is touched. Call with the folder's lock held. Returns the names removed.
QStringList removeStaleTemporaries(const QString &folder);

} // namespace ifs
