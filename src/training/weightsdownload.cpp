// Resumable, verified downloads into torch.hub's cache (see weightsdownload.h).

#include "training/weightsdownload.h"

#include <QCryptographicHash>
#include <QDir>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QFileInfo>
#include <QLockFile>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QRegularExpression>
#include <QTimer>

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

namespace ifs {

namespace {

constexpr int kTransferTimeoutMs = 60000; // a stalled connection fails instead of hanging
constexpr qint64 kProgressIntervalMs = 100;

QString native(const QString &path)
{
    return QDir::toNativeSeparators(path);
}

/// Syncs a folder so that a rename in it survives a power cut (best effort).
void syncFolder(const QString &folder)
{
    const int fd
        = ::open(QFile::encodeName(folder).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

/// One GET of the URL into the partial file, from where it ends. `restart` is set when the
/// server cannot continue the partial file (it was cut back to nothing: try again).
class PartialDownload
{
public:
    PartialDownload(const QString &url, const QString &partialPath,
                    const DownloadCallbacks &callbacks)
        : m_url(url)
        , m_partialPath(partialPath)
        , m_callbacks(callbacks)
        , m_hash(QCryptographicHash::Sha256)
    { }

    /// Runs the request to its end; on success the partial file holds the whole file and
    /// digest() its SHA-256.
    Status run();
    QString digest() const { return QString::fromLatin1(m_hash.result().toHex()); }
    bool restart() const { return m_restart; }

private:
    Status openPartial();
    Status acceptHeaders(QNetworkReply *reply);
    Status write(const QByteArray &bytes);
    void report(bool force);
    Status finish(QNetworkReply *reply);

    QString m_url;
    QString m_partialPath;
    const DownloadCallbacks &m_callbacks;
    QCryptographicHash m_hash;
    QFile m_file;
    DownloadProgress m_progress;
    QElapsedTimer m_lastReport;
    bool m_headersSeen = false;
    bool m_cancelled = false;
    bool m_restart = false;
    Status m_status = success(); ///< fails when the reply is refused (and aborted)
};

/// Opens the partial file for appending (created when missing) and hashes what it holds.
Status PartialDownload::openPartial()
{
    m_file.setFileName(m_partialPath);
    if (!m_file.open(QIODevice::ReadWrite | QIODevice::Append | QIODevice::Unbuffered))
        return Error{QStringLiteral("cannot write “%1”: %2")
                         .arg(native(m_partialPath), m_file.errorString()),
                     ErrorCode::Io};
    m_file.seek(0);
    QByteArray chunk(1 << 20, Qt::Uninitialized);
    for (qint64 n; (n = m_file.read(chunk.data(), chunk.size())) > 0;) {
        m_hash.addData(QByteArrayView(chunk.constData(), n));
        m_progress.received += n;
    }
    m_progress.resumedFrom = m_progress.received;
    return success();
}

/// The status line decides what the body is: the rest of the file (206 from where the partial
/// file ends), the whole file (200: the partial file starts over), or an error page.
Status PartialDownload::acceptHeaders(QNetworkReply *reply)
{
    m_headersSeen = true;
    const int code = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    const qint64 length = reply->header(QNetworkRequest::ContentLengthHeader).isValid()
        ? reply->header(QNetworkRequest::ContentLengthHeader).toLongLong()
        : -1;
    if (code == 206) {
        static const QRegularExpression range(QStringLiteral(R"(^bytes (\d+)-\d+/(\d+|\*)$)"));
        const auto match = range.match(QString::fromLatin1(reply->rawHeader("Content-Range")));
        if (!match.hasMatch() || match.captured(1).toLongLong() != m_progress.received)
            return Error{QStringLiteral("the server sent another part of the file (%1) than "
                                        "asked for (from byte %2)")
                             .arg(QString::fromLatin1(reply->rawHeader("Content-Range")))
                             .arg(m_progress.received)};
        bool known = false;
        const qint64 total = match.captured(2).toLongLong(&known);
        m_progress.total = known ? total : -1;
        return success();
    }
    if (code == 200) {
        if (m_progress.received > 0) { // the server ignores Range: the whole file again
            if (!m_file.resize(0))
                return Error{QStringLiteral("cannot write “%1”: %2")
                                 .arg(native(m_partialPath), m_file.errorString()),
                             ErrorCode::Io};
            m_hash.reset();
            m_progress.received = 0;
            m_progress.resumedFrom = 0;
        }
        m_progress.total = length;
        return success();
    }
    if (code == 416) { // nothing after the partial file's end: it cannot be continued
        m_restart = true;
        return Error{QStringLiteral("the server cannot continue the partial download")};
    }
    return Error{QStringLiteral("the server answered HTTP %1 %2")
                     .arg(code)
                     .arg(reply->attribute(QNetworkRequest::HttpReasonPhraseAttribute).toString())};
}

Status PartialDownload::write(const QByteArray &bytes)
{
    if (bytes.isEmpty())
        return success();
    if (m_file.write(bytes) != bytes.size())
        return Error{QStringLiteral("cannot write “%1”: %2")
                         .arg(native(m_partialPath), m_file.errorString()),
                     ErrorCode::Io};
    m_hash.addData(bytes);
    m_progress.received += bytes.size();
    report(false);
    return success();
}

void PartialDownload::report(bool force)
{
    if (!m_callbacks.progress)
        return;
    if (!force && m_lastReport.isValid() && m_lastReport.elapsed() < kProgressIntervalMs)
        return;
    m_lastReport.start();
    m_callbacks.progress(m_progress);
}

Status PartialDownload::run()
{
    if (Status ok = openPartial(); !ok)
        return ok;
    QNetworkAccessManager network;
    QNetworkRequest request{QUrl(m_url)};
    request.setHeader(QNetworkRequest::UserAgentHeader, QStringLiteral("ImageFolderStudio"));
    request.setAttribute(QNetworkRequest::RedirectPolicyAttribute,
                         QNetworkRequest::NoLessSafeRedirectPolicy);
    request.setTransferTimeout(kTransferTimeoutMs);
    // Bytes as they are stored: no transparent gzip, whose sizes would not be the file's.
    request.setRawHeader("Accept-Encoding", "identity");
    if (m_progress.received > 0)
        request.setRawHeader("Range", "bytes=" + QByteArray::number(m_progress.received) + '-');
    QNetworkReply *reply = network.get(request);
    QEventLoop loop;
    auto consume = [&] {
        if (!m_status || m_cancelled)
            return;
        if (m_callbacks.cancelled && m_callbacks.cancelled()) {
            m_cancelled = true;
            reply->abort();
            return;
        }
        if (!m_headersSeen) {
            if (!reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).isValid())
                return; // no answer yet (or none at all: the reply's error says why)
            m_status = acceptHeaders(reply);
        }
        if (m_status)
            m_status = write(reply->readAll());
        if (!m_status)
            reply->abort();
    };
    QObject::connect(reply, &QNetworkReply::readyRead, &loop, consume);
    QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
    QTimer poll;
    QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
        if (m_callbacks.cancelled && m_callbacks.cancelled()) {
            m_cancelled = true;
            reply->abort();
        }
    });
    poll.start(50);
    if (!reply->isFinished())
        loop.exec();
    poll.stop();
    if (!m_cancelled)
        consume(); // what arrived with the end (also before a broken connection's end)
    return finish(reply); // the reply goes with `network`
}

/// The outcome once the reply has ended: cancelled, failed (the partial file stays for a
/// resume), or complete (the partial file synced, closed and of the announced size).
Status PartialDownload::finish(QNetworkReply *reply)
{
    report(true);
    if (m_cancelled) {
        m_file.close();
        return Error{QStringLiteral("the download was cancelled (%1 bytes kept in “%2” for a "
                                    "resume)")
                         .arg(m_progress.received)
                         .arg(native(m_partialPath)),
                     ErrorCode::Cancelled};
    }
    if (!m_status) {
        m_file.close();
        return m_status;
    }
    if (reply->error() != QNetworkReply::NoError || !m_headersSeen) {
        m_file.close();
        return Error{reply->errorString()};
    }
    if (m_progress.total >= 0 && m_progress.received != m_progress.total) {
        m_file.close();
        return Error{QStringLiteral("the connection ended after %1 of %2 bytes")
                         .arg(m_progress.received)
                         .arg(m_progress.total)};
    }
    if (::fsync(int(m_file.handle())) != 0) {
        const int error = errno;
        m_file.close();
        return Error{QStringLiteral("cannot write “%1”: %2")
                         .arg(native(m_partialPath), qt_error_string(error)),
                     ErrorCode::Io};
    }
    m_file.close();
    return success();
}

} // namespace

Status downloadFile(const QString &url, const QString &path, const DownloadCheck &check,
                    const DownloadCallbacks &callbacks)
{
    const QString folder = QFileInfo(path).absolutePath();
    if (!QDir().mkpath(folder))
        return Error{QStringLiteral("cannot create the folder “%1”").arg(native(folder)),
                     ErrorCode::Io};
    const QString partial = path + QStringLiteral(".partial");
    // One download per file at a time (the GUI and the CLI may both fetch): two appending to
    // one partial file would ruin it.
    QLockFile lock(partial + QStringLiteral(".lock"));
    if (!lock.tryLock(0)) {
        qint64 pid = 0;
        QString host, application;
        lock.getLockInfo(&pid, &host, &application);
        return Error{QStringLiteral("another download of “%1” is under way (process %2): wait "
                                    "for it to end")
                         .arg(native(path))
                         .arg(pid)};
    }
    for (int attempt = 0;; ++attempt) {
        PartialDownload download(url, partial, callbacks);
        Status ok = download.run();
        const QString digest = download.digest();
        const bool accepted
            = digest.startsWith(check.hashPrefix) || check.acceptedSha256.contains(digest);
        if (!ok && download.restart() && !accepted) {
            if (attempt > 0)
                return ok;
            QFile::remove(partial); // the server cannot continue it: once more from the start
            continue;
        }
        // A cancel that came with the last bytes still holds: the file stays partial.
        if (ok && callbacks.cancelled && callbacks.cancelled())
            return Error{QStringLiteral("the download was cancelled (kept in “%1” for a resume)")
                             .arg(native(partial)),
                         ErrorCode::Cancelled};
        if (!ok && !download.restart()) {
            if (QFileInfo(partial).size() == 0)
                QFile::remove(partial); // nothing to resume: leave no empty file behind
            return ok;
        }
        // (A partial file that the server cannot continue may be complete: a download killed
        // before its rename. Its hash says so.)
        if (!accepted) {
            QFile::remove(partial);
            return Error{QStringLiteral("the downloaded file's SHA-256 begins with %1, not %2 "
                                        "as its name says (it was removed)")
                             .arg(digest.left(std::max<qsizetype>(check.hashPrefix.size(), 8)),
                                  check.hashPrefix),
                         ErrorCode::Format};
        }
        // rename() replaces atomically: the final name never holds part of a file.
        if (std::rename(QFile::encodeName(partial).constData(), QFile::encodeName(path).constData())
            != 0)
            return Error{QStringLiteral("cannot rename “%1” to “%2”: %3")
                             .arg(native(partial), native(path), qt_error_string(errno)),
                         ErrorCode::Io};
        syncFolder(folder);
        return success();
    }
}

Result<QString> ensurePretrainedWeights(const PretrainedWeights &weights,
                                        const PretrainedOptions &options,
                                        const DownloadCallbacks &callbacks)
{
    const QString path = options.pathOf(weights);
    if (QFileInfo(path).isFile()) {
        if (Status ok = verifyWeightsFile(path, weights, options); !ok)
            return ok.error();
        return path;
    }
    DownloadCheck check;
    check.hashPrefix = weights.hashPrefix();
    check.acceptedSha256 = options.acceptedSha256;
    if (Status ok = downloadFile(options.urlOf(weights), path, check, callbacks); !ok) {
        if (ok.isCancellation())
            return ok.error();
        return Error{missingWeightsMessage(weights, options, ok.errorMessage()), ok.error().code};
    }
    return path;
}

QString downloadProgressText(const DownloadProgress &progress)
{
    const auto mb = [](qint64 bytes) {
        return QString::number(double(bytes) / 1e6, 'f', 1);
    };
    if (progress.total > 0)
        return QStringLiteral("%1 of %2 MB").arg(mb(progress.received), mb(progress.total));
    return QStringLiteral("%1 MB").arg(mb(progress.received));
}

} // namespace ifs
