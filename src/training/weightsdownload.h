#pragma once

// Downloading pretrained weights into torch.hub's cache, as torch.hub.download_url_to_file does
// and more: the bytes go to "<file>.partial" beside the final name, a later download resumes it
// with an HTTP Range request, the SHA-256 prefix of the name is checked, and only a complete,
// verified file is renamed to the final name (never a half file under it). Synchronous: it runs
// its own event loop on the calling thread (a worker's, or the CLI's), which needs a
// QCoreApplication.

#include "base/result.h"
#include "training/pretrained.h"

#include <QString>

#include <functional>

namespace ifs {

struct DownloadProgress
{
    qint64 received = 0; ///< bytes in the partial file, the resumed ones included
    qint64 total = -1; ///< the whole file's size; -1 while unknown
    qint64 resumedFrom = 0; ///< bytes that were already there when this download started
};

struct DownloadCallbacks
{
    /// Called as bytes arrive (at most ~10 times a second) and once at the end.
    std::function<void(const DownloadProgress &)> progress;
    /// Polled while downloading; true stops it (the partial file stays, for a resume).
    std::function<bool()> cancelled;
};

/// What a download checks before it renames the file into place.
struct DownloadCheck
{
    QString hashPrefix; ///< the SHA-256 must start with it (empty: anything goes)
    QStringList acceptedSha256; ///< or be one of these (tests)
};

/// Downloads `url` to `path` (its folder is created): resumes `path`.partial when there is one
/// (Range: bytes=N-; a server that answers 200 instead starts it over), checks the hash, then
/// renames the partial file to `path` atomically. One download per file at a time
/// (`path`.partial.lock): a second one fails at once, naming the process. A cancel leaves the
/// partial file and fails with ErrorCode::Cancelled; a network failure leaves it too (the next call
/// resumes); a file whose hash does not match is removed, and the error says so. Errors name the
/// URL and the reason.
Status downloadFile(const QString &url, const QString &path, const DownloadCheck &check,
                    const DownloadCallbacks &callbacks = {});

/// The file of `weights`: the cached one when it is there and verified, else downloaded into
/// the cache. Fails with missingWeightsMessage() (which URL, which file to put where) when the
/// download fails, with verifyWeightsFile()'s message when a cached file is not those weights.
Result<QString> ensurePretrainedWeights(const PretrainedWeights &weights,
                                        const PretrainedOptions &options,
                                        const DownloadCallbacks &callbacks = {});

/// "12.3 of 44.7 MB" for a status line.
QString downloadProgressText(const DownloadProgress &progress);

} // namespace ifs
