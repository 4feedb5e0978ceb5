#pragma once

#include "base/result.h"

#include <QList>
#include <QString>
#include <QStringList>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ifs {

/// torchvision.datasets.folder.IMG_EXTENSIONS (0.14), in torchvision's order.
extern const std::vector<std::string_view> kImageExtensions;

/// True when the lower-cased name ends with one of kImageExtensions, exactly as torchvision's
/// has_file_allowed_extension() decides (ASCII lower-casing is enough: the extensions are ASCII).
bool hasImageExtension(std::string_view fileName);

/// One sample as torchvision lists it: a path relative to the dataset root and a class index.
struct Sample
{
    std::string relativePath; ///< Raw file-system bytes (UTF-8 on sane systems), '/' separated.
    int classIndex = -1;

    QString displayPath() const; ///< Decoded for the UI and JSON.
};

/// Something the scan noticed that torchvision would not tell the user.
struct ScanIssue
{
    enum class Kind {
        SymlinkLoop, ///< A symlinked folder leads back to one of its ancestors: not followed.
        UnreadableFolder, ///< opendir() failed: skipped, as os.walk() does silently.
        EmptyClass, ///< A class folder without any valid image.
    };
    Kind kind;
    QString path; ///< Relative to the root, '/' separated.
    QString message; ///< A full sentence for the user.
};

/// What torchvision's ImageFolder(root) would make of a folder, plus what it would not say.
struct ImageFolderIndex
{
    QString root; ///< Absolute, clean path of the scanned folder.
    QStringList classes; ///< Sorted by code point, as torchvision's find_classes().
    std::vector<Sample> samples; ///< In torchvision's order.
    std::vector<int64_t> counts; ///< Images per class, indexed like classes.
    QList<ScanIssue> issues; ///< Loops, unreadable folders, empty classes.
    /// Set when torchvision's ImageFolder would raise for this folder (no class folder, or an empty
    /// class without allow_empty). The index is still filled in as far as it goes.
    QString refusal;
    bool cancelled = false;

    int classCount() const { return int(classes.size()); }
    int64_t sampleCount() const { return int64_t(samples.size()); }
    int classIndex(const QString &name) const { return int(classes.indexOf(name)); }
    QString absolutePath(const Sample &sample) const;
    bool acceptedByTorchvision() const { return refusal.isEmpty() && !cancelled; }
};

struct ScanOptions
{
    /// Newer torchvision's ImageFolder(allow_empty=True): keep classes without images.
    bool allowEmpty = false;
    /// Worker threads for walking class folders; 0 = all cores.
    int threads = 0;
};

/// Hooks for a streaming scan. Called from worker threads: keep them cheap and thread-safe.
struct ScanCallbacks
{
    /// The sorted class list, before any class folder is walked.
    std::function<void(const QStringList &classes)> classesFound;
    /// A running count for one class (called often; throttle on the receiving side).
    std::function<void(int classIndex, int64_t count)> classProgress;
};

/// Scans `root` like torchvision.datasets.ImageFolder (0.14): classes are all sub-folders of root
/// (symlinks followed, hidden ones included), samples are files with an image extension found by a
/// recursive walk that follows symlinks, ordered as sorted(os.walk(...)) then sorted(fnames).
/// Fails only when root itself cannot be listed; torchvision's refusals go to index.refusal.
/// `cancel` is polled between directories.
Result<ImageFolderIndex> scanImageFolder(const QString &root, const ScanOptions &options = {},
                                         const ScanCallbacks &callbacks = {},
                                         const std::atomic_bool *cancel = nullptr);

} // namespace ifs

#include <memory>

namespace ifs {
/// Scans are shared read-only between the scanner thread, models and workers.
using IndexPtr = std::shared_ptr<const ImageFolderIndex>;
} // namespace ifs
