#pragma once

#include "base/result.h"
#include "dataset/imagefolder.h"
#include "dataset/nearduplicates.h"
#include "image/imageprobe.h"

#include <QList>
#include <QString>

#include <atomic>
#include <functional>

namespace ifs {

/// One problem the health check found in one file.
struct HealthFinding
{
    enum class Kind {
        ZeroByte, ///< empty file
        Unreadable, ///< not an image, or the decoder fails: torchvision's loader would raise
        Truncated, ///< the data ends early
        HugeDimensions, ///< beyond PIL's decompression-bomb limit (error) or warning limit
        TinyDimensions, ///< a side shorter than a useful minimum
        UnusualMode, ///< CMYK, 16-bit, palette, alpha, gray in an RGB dataset, ...
        WrongExtension, ///< the content is another format than the name says
        Duplicate, ///< byte-identical to another file (maybe in another split)
        /// looks like another file (perceptual hashes a few bits apart: a resized, re-encoded
        /// or cropped copy); an error when that file is in another split (leakage)
        NearDuplicate,
    };
    enum class Severity { Info, Warning, Error };

    Kind kind;
    Severity severity;
    QString split; ///< "train", "val", ... or empty for a single-folder dataset
    QString relativePath; ///< relative to the split root (or the dataset root)
    QString absolutePath;
    QString message; ///< full sentence naming the file and the reason
    QString duplicateOf; ///< for Duplicate: the first file (split/relative path) with the same
                         ///< bytes for NearDuplicate: the first file of its group
    int hashDistance = -1; ///< for NearDuplicate: bits between the two perceptual hashes
};

/// Stable JSON keys ("zero_byte", "truncated", ..., "error", "warning", "info"), shared by the
/// CLI's --json output and the GUI's report export.
const char *healthKindKey(HealthFinding::Kind kind);
const char *healthSeverityKey(HealthFinding::Severity severity);

/// Per-file facts gathered while checking (kept for the summary and the benchmark).
struct HealthReport
{
    QList<HealthFinding> findings;
    int64_t filesChecked = 0;
    int64_t bytesRead = 0;
    double seconds = 0;
    bool cancelled = false;

    int errorCount() const;
    int warningCount() const;
};

/// One split (or the whole dataset) to check.
struct HealthTarget
{
    QString split; ///< empty for a plain ImageFolder root
    const ImageFolderIndex *index = nullptr;
};

struct HealthOptions
{
    int threads = 0; ///< 0 = all cores
    int minSide = 8; ///< smaller is "tiny"
    bool findDuplicates = true;
    /// Also fingerprint every image (pHash and a thumbnail, dataset/nearduplicates.h) and report
    /// the groups of near-duplicates, byte-identical copies left to findDuplicates. Off by
    /// default: it decodes each image a second time, at a reduced size.
    bool findNearDuplicates = false;
    int nearDuplicateThreshold = kNearDuplicateThreshold; ///< bits between the hashes
    double nearDuplicateMaxDifference = kNearDuplicateMaxDifference; ///< thumbnails, grey levels
};

/// Decodes every sample of every target, off the calling thread's responsibility: it blocks, so run
/// it on a worker. `progress(done, total)` is called from worker threads (throttle on the
/// receiver). `cancel` is polled between files.
HealthReport checkHealth(const QList<HealthTarget> &targets, const HealthOptions &options = {},
                         const std::function<void(int64_t done, int64_t total)> &progress = {},
                         const std::atomic_bool *cancel = nullptr);

} // namespace ifs
