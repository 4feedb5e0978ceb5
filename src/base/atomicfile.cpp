// Whole-or-unchanged files with every write, sync and rename checked (see atomicfile.h).

#include "base/atomicfile.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRandomGenerator>
#include <QRegularExpression>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ifs {

namespace {

Error writeError(const QString &path, int error)
{
    return Error{QStringLiteral("cannot write “%1”: %2")
                     .arg(QDir::toNativeSeparators(path), qt_error_string(error)),
                 ErrorCode::Io};
}

/// Writes all of `bytes` to `fd`; returns 0 or the errno of the write that failed.
int writeAll(int fd, const QByteArray &bytes)
{
    const char *data = bytes.constData();
    qsizetype left = bytes.size();
    while (left > 0) {
        const ssize_t written = ::write(fd, data, size_t(left));
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (written == 0)
            return EIO; // a regular file never takes nothing without an error
        data += written;
        left -= written;
    }
    return 0;
}

/// Six random letters and digits, as a temporary file's distinguishing part.
QString randomTag()
{
    static constexpr char kChars[]
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    QString tag;
    for (int i = 0; i < 6; ++i)
        tag += QLatin1Char(kChars[QRandomGenerator::global()->bounded(int(sizeof kChars) - 1)]);
    return tag;
}

/// Creates a new temporary file beside `path`; returns its descriptor (or -errno) and name.
std::pair<int, QByteArray> createTemporary(const QString &path)
{
    for (int attempt = 0; attempt < 100; ++attempt) {
        const QByteArray name = QFile::encodeName(path + u'.' + randomTag() + u".tmp");
        const int fd = ::open(name.constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return {fd >= 0 ? fd : -errno, name};
    }
    return {-EEXIST, {}};
}

/// Syncs the folder of `path`, so that a rename in it survives a power cut. Best effort: some
/// file systems cannot sync a folder, and the file itself is complete either way.
void syncFolder(const QString &path)
{
    const QByteArray folder = QFile::encodeName(QFileInfo(path).absolutePath());
    const int fd = ::open(folder.constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

} // namespace

Status writeFileAtomically(const QString &path, const QByteArray &bytes)
{
    const QByteArray target = QFile::encodeName(path);
    const auto [fd, temporary] = createTemporary(path);
    if (fd < 0)
        return writeError(path, -fd);
    struct stat existing
    {
    };
    if (::stat(target.constData(), &existing) == 0)
        ::fchmod(fd, existing.st_mode & 07777); // as QSaveFile: the file keeps its permissions
    int error = writeAll(fd, bytes);
    if (!error && ::fsync(fd) != 0)
        error = errno;
    if (::close(fd) != 0 && !error) // NFS reports a failed write-back here
        error = errno;
    if (!error && ::rename(temporary.constData(), target.constData()) != 0)
        error = errno;
    if (error) {
        ::unlink(temporary.constData());
        return writeError(path, error);
    }
    syncFolder(path);
    return success();
}

bool isAtomicWriteTemporary(const QString &fileName, const QString &target)
{
    static const QRegularExpression tag(QStringLiteral("^\\.[A-Za-z0-9]{6}\\.tmp$"));
    return fileName.startsWith(target)
        && tag.match(QStringView(fileName).mid(target.size())).hasMatch();
}

AppendFile::~AppendFile()
{
    close();
}

Status AppendFile::open(const QString &path)
{
    close();
    m_path = path;
    const int fd = ::open(QFile::encodeName(path).constData(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return writeError(path, errno);
    struct stat info
    {
    };
    if (::fstat(fd, &info) != 0) {
        const int error = errno;
        ::close(fd);
        return writeError(path, error);
    }
    m_fd = fd;
    m_size = qint64(info.st_size);
    return success();
}

Status AppendFile::append(const QByteArray &bytes)
{
    if (m_fd < 0)
        return writeError(m_path, EBADF);
    if (const int error = writeAll(m_fd, bytes); error) {
        Error failure = writeError(m_path, error);
        if (::ftruncate(m_fd, off_t(m_size)) != 0)
            failure.message += QStringLiteral(", and its last line may be incomplete (%1)")
                                   .arg(qt_error_string(errno));
        return failure;
    }
    m_size += bytes.size();
    return success();
}

Status AppendFile::sync()
{
    if (m_fd >= 0 && ::fdatasync(m_fd) != 0)
        return writeError(m_path, errno);
    return success();
}

void AppendFile::close()
{
    if (m_fd >= 0)
        ::close(m_fd);
    m_fd = -1;
}

} // namespace ifs
