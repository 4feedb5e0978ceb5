#pragma once

#include "base/result.h"

#include <QList>
#include <QString>
#include <QStringList>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ifs {

/// torchvision.datasets.folder.IMG_EXTENSIONS (0.14), in torchvision's order.
extern const std::vector<std::string_view> kImageExtensions;

/// True when the lower-cased name ends with one of kImageExtensions, exactly as torchvision's
/// has_file_allowed_extension() decides (ASCII lower-casing is enough: the extensions are ASCII).
bool hasImageExtension(std::string_view fileName);

struct ImageFolderIndex;
namespace detail {
struct SampleMaker;
}

/// One sample as torchvision lists it: a path relative to the dataset root and a class index.
/// 16 bytes: the path's bytes live in the index's PathStore (no allocation per sample), so a
/// Sample is only made by its index (scanImageFolder(), ImageFolderIndex::addSample()).
class Sample
{
    // First, for a 16-byte layout without padding.
    const char *m_path = nullptr;
    uint32_t m_size = 0;

public:
    int classIndex = -1;

    /// Raw file-system bytes, '/' separated; valid as long as the index's path store lives.
    std::string_view relativePath() const { return {m_path, m_size}; }
    /// The path as Python's str (os.fsdecode(): undecodable bytes as lone surrogates, see
    /// base/filenames.h): exact, for comparing and opening (ImageFolderIndex::absolutePath()).
    /// Show it through displayFileName().
    QString displayPath() const;

private:
    friend struct ImageFolderIndex;
    friend struct detail::SampleMaker;
    Sample(std::string_view path, int index)
        : m_path(path.data())
        , m_size(uint32_t(path.size()))
        , classIndex(index)
    { }
};

/// The bytes of many paths in a few large blocks that never move, so that views into them stay
/// valid while the store grows. Append-only; shared by the copies of an index.
class PathStore
{
public:
    /// Copies `prefix`, then (when `name` is not empty) '/' and `name`; returns a view of the copy.
    std::string_view add(std::string_view prefix, std::string_view name = {});
    /// `size` contiguous bytes to fill in, as long-lived as the rest.
    char *allocate(size_t size);
    /// Takes over the blocks of `other` (views into them stay valid).
    void adopt(PathStore &&other);

private:
    std::vector<std::unique_ptr<char[]>> m_blocks;
    char *m_next = nullptr;
    size_t m_left = 0;
    size_t m_blockSize = 16 * 1024;
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
    QString path; ///< Relative to the root, '/' separated (os.fsdecode()'d, see base/filenames.h).
    QString message; ///< A full sentence for the user.
};

/// What torchvision's ImageFolder(root) would make of a folder, plus what it would not say.
struct ImageFolderIndex
{
    QString root; ///< Absolute, clean path of the scanned folder.
    /// Sorted by code point, as torchvision's find_classes(); as Python's str (os.fsdecode()'d,
    /// see base/filenames.h): show them through displayFileName().
    QStringList classes;
    std::vector<Sample> samples; ///< In torchvision's order.
    std::shared_ptr<PathStore> paths; ///< Holds the bytes of the samples' paths.
    std::vector<int64_t> counts; ///< Images per class, indexed like classes.
    QList<ScanIssue> issues; ///< Loops, unreadable folders, empty classes.
    /// Set when torchvision's ImageFolder would raise for this folder (no class folder, or an empty
    /// class without allow_empty). The index is still filled in as far as it goes.
    QString refusal;
    bool cancelled = false;

    int classCount() const { return int(classes.size()); }
    int64_t sampleCount() const { return int64_t(samples.size()); }
    int classIndex(const QString &name) const { return int(classes.indexOf(name)); }
    /// root/relative path, os.fsdecode()'d: open it with FileNameFile (base/filenames.h).
    QString absolutePath(const Sample &sample) const;
    /// Appends a sample, copying its path (raw bytes, relative to root) into `paths`.
    void addSample(std::string_view relativePath, int classIndex);
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

/// Scans are shared read-only between the scanner thread, models and workers.
using IndexPtr = std::shared_ptr<const ImageFolderIndex>;
} // namespace ifs
