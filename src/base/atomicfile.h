#pragma once

// Files that are whole or unchanged, even when the disk fills up, the process is killed or the
// power goes: a complete replacement (writeFileAtomically) and a log that grows by whole
// records (AppendFile). Every system call is checked, and errors name the file and the
// system's reason ("No space left on device").

#include "base/result.h"

#include <QByteArray>
#include <QString>

namespace ifs {

/// Replaces `path` with `bytes`: a temporary file beside it ("<name>.XXXXXX.tmp"), written in
/// full, synced to disk, renamed over `path` (keeping its permissions), and the folder synced.
/// On any failure the temporary is removed and `path` keeps its previous content (or stays
/// absent); the error (ErrorCode::Io) reads "cannot write “<path>”: <reason>".
///
/// Unlike QSaveFile it does not ignore the errors of its final flush and sync: QSaveFile
/// buffers small writes, and a disk that is full when they are flushed in commit() still got
/// the (empty) file renamed into place.
Status writeFileAtomically(const QString &path, const QByteArray &bytes);

/// Whether `fileName` (a name, no folder) is a temporary of writeFileAtomically() for a file
/// named `target`, as a process killed during the write leaves it.
bool isAtomicWriteTemporary(const QString &fileName, const QString &target);

/// A file that grows by whole records (a CSV log such as steps.csv). Each append() is written
/// in full or, when the system refuses part of it (a full disk, a file size limit), the file is
/// cut back to its size before, so that it never ends in half a record. Unbuffered: what an
/// append() wrote is in the file even when the process is killed right after.
class AppendFile
{
public:
    AppendFile() = default;
    ~AppendFile();
    AppendFile(const AppendFile &) = delete;
    AppendFile &operator=(const AppendFile &) = delete;

    /// Opens the existing file `path` for appending at its end.
    Status open(const QString &path);
    bool isOpen() const { return m_fd >= 0; }
    QString path() const { return m_path; }

    /// Appends `bytes` whole. On failure the file is cut back to where it was and the error
    /// says why ("cannot write “<path>”: File too large").
    Status append(const QByteArray &bytes);
    /// Waits until what was appended is on the disk.
    Status sync();
    void close();

private:
    QString m_path;
    int m_fd = -1;
    qint64 m_size = 0; ///< the file's size after the last complete append
};

} // namespace ifs
