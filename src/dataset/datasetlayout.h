#pragma once

#include "dataset/imagefolder.h"

#include <QList>
#include <QMap>
#include <QString>
#include <QStringList>

#include <functional>

namespace ifs {

/// How a dataset folder is organised: a plain ImageFolder root, or a root whose `train/` and
/// `val/` (or `test/`, `valid/`, `validation/`) sub-folders are ImageFolder roots of their own.
struct DatasetLayout
{
    QString root;
    QStringList splits; ///< empty for a plain root; else e.g. {"train", "val"}, train first

    bool hasSplits() const { return !splits.isEmpty(); }
    QString splitRoot(const QString &split) const; ///< root/split, or root for ""
};

/// Looks at the folder names only (no walk). A folder is split when it holds `train` and at least
/// one of `val`, `valid`, `validation`, `test` as sub-folders.
DatasetLayout detectLayout(const QString &root);

/// Where the class sets or class_to_idx of two splits disagree. Each entry is one sentence.
struct SplitMismatch
{
    QString firstSplit, secondSplit;
    QStringList onlyInFirst, onlyInSecond;
    QStringList differentIndex; ///< classes in both with different indices
    bool isEmpty() const
    {
        return onlyInFirst.isEmpty() && onlyInSecond.isEmpty() && differentIndex.isEmpty();
    }
    QString message() const; ///< what is wrong and why it matters, for a banner
};

SplitMismatch compareSplits(const QString &firstName, const ImageFolderIndex &first,
                            const QString &secondName, const ImageFolderIndex &second);

/// A scanned dataset: its layout and one index per split ("" alone for a plain root).
struct DatasetScan
{
    DatasetLayout layout;
    QStringList splits;
    QMap<QString, IndexPtr> indexes;
    QList<SplitMismatch> mismatches; ///< the first split against each other one

    IndexPtr index(const QString &split) const { return indexes.value(split); }
};

/// Scans every split of `layout` (or its root) in turn with scanImageFolder() and compares the
/// splits' classes. `splitStarted` is called before each split's scan, on the calling thread.
/// Fails when a split cannot be listed; a cancelled scan returns what it has so far.
Result<DatasetScan> scanDataset(const DatasetLayout &layout, const ScanOptions &options = {},
                                const ScanCallbacks &callbacks = {},
                                const std::function<void(const QString &split)> &splitStarted = {},
                                const std::atomic_bool *cancel = nullptr);

/// A problem worth telling the user about a scanned folder.
struct DatasetWarning
{
    enum class Kind {
        HiddenClass, ///< ".ipynb_checkpoints" and friends became classes
        NumericOrder, ///< numeric class names sorted as strings: "10" before "2"
        EmptyClass,
        Imbalance,
        SymlinkLoop,
        UnreadableFolder,
        SplitMismatch,
        Refused, ///< torchvision would raise
    };
    enum class Severity { Info, Warning, Error };
    Kind kind;
    Severity severity;
    QString message;
    QStringList classes; ///< the classes concerned, if any
};

/// Imbalance is reported when the largest class has at least this many times the smallest's images.
inline constexpr double kImbalanceRatio = 10.0;

QList<DatasetWarning> analyseDataset(const ImageFolderIndex &index);

/// class_to_idx as a JSON object, ready for json.load() in a Python script.
QByteArray classToIdxJson(const ImageFolderIndex &index);

/// Writes classToIdxJson() to `path` atomically (temp file + rename).
Status saveClassToIdx(const ImageFolderIndex &index, const QString &path);

} // namespace ifs
