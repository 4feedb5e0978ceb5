#pragma once

#include "result.h"

#include <QString>

#include <atomic>
#include <functional>

namespace ifs {

/// Where Debian's dataset-fashion-mnist package puts the IDX files.
QString defaultFashionMnistSource();

struct SampleDataOptions
{
    QString source;            ///< folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
    int limitPerClass = 0;     ///< 0 = everything; >0 keeps the first N images of each class per split
};

struct SampleDataResult
{
    QString root;              ///< DEST (holds train/ and val/)
    bool alreadyThere = false; ///< a complete earlier export was found and kept
    int64_t imagesWritten = 0;
};

/// Exports Fashion-MNIST as an ImageFolder tree DEST/train/<class>/<n>.png and DEST/val/<class>/<n>.png
/// (class folders named after the official labels, made file-system safe: "T-shirt_top", ...).
/// Writes into a temporary folder and renames it into place, so an interrupted export leaves nothing
/// half-made; a complete export is detected and kept. `progress(done, total)` from worker threads.
Result<SampleDataResult> exportFashionMnist(const QString &dest, const SampleDataOptions &options = {},
                                            const std::function<void(int64_t, int64_t)> &progress = {},
                                            const std::atomic_bool *cancel = nullptr);

/// The official Fashion-MNIST label names in label order, and their folder names.
QStringList fashionMnistLabels();
QStringList fashionMnistFolderNames();

} // namespace ifs
